"""``make bench``: every scaling strategy's effect, measured.

    .venv/bin/python -m bench.run [--suites cache,replicas,scale,writes,pooling,concurrency,jobs]
                                  [--sizes 10000,1000000] [--seconds 10]
                                  [--repeat 3] [--shapes 3x2,3x1]

Datasets are seeded once with ``myapp-seed`` into ``conduit_bench_<size>``
on the local Postgres and kept for later runs. Each suite starts the process
cluster (cluster/up.sh: nginx + gunicorn replicas) in the topology it needs,
drives it with wrk on 127.0.0.1, and records wrk's latencies and throughput
with the app's own counters (requests per replica, SQL statements per
request, cache hit ratio). Results go to bench/results/<stamp>.jsonl, a
Markdown report next to it, and PNG plots (bench/report.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.harness import ROOT, Cluster, Topology, measure
from myapp.db import normalize_url

SERVER = "postgresql://postgres@127.0.0.1:5432"
RESULTS = ROOT / "bench" / "results"
LIST_PATH = "/api/articles?limit=20"
LIST = "GET " + LIST_PATH
HELLO = "bare WSGI hello"
WRITES = ROOT / "bench" / "wrk" / "writes.lua"
WRITE_MIX = "write mix (publish, comment, fav/unfav)"
BENCH_DOMAIN = "bench.example"  # the benchmark's own users (fixtures)


def dataset_url(size: int) -> str:
    return f"{SERVER}/conduit_bench_{size}"


def ensure_dataset(size: int) -> str:
    """The seeded database for ``size`` articles (seeded on first use)."""
    url = dataset_url(size)
    admin = create_engine(normalize_url(f"{SERVER}/postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": f"conduit_bench_{size}"}
        )
        if not exists:
            conn.execute(text(f'CREATE DATABASE "conduit_bench_{size}"'))
    admin.dispose()
    bin_dir = ROOT / ".venv" / "bin"
    env = {"DATABASE_URL": url, "PATH": str(bin_dir) + ":/usr/bin:/bin"}
    subprocess.run(
        [str(bin_dir / "myapp-initdb"), "production.ini", "--no-demo"],
        cwd=ROOT, env=env | {"SECRET_KEY": "bench"}, check=True, capture_output=True,
    )  # fmt: skip
    engine = create_engine(normalize_url(url))
    with engine.connect() as conn:
        articles = conn.scalar(text("SELECT count(*) FROM articles"))
    if not articles:
        started = time.monotonic()
        subprocess.run(
            [str(bin_dir / "myapp-seed"), "production.ini", "--articles", str(size)],
            cwd=ROOT, env=env | {"SECRET_KEY": "bench"}, check=True,
        )  # fmt: skip
        print(f"seeded {size} articles in {time.monotonic() - started:.0f}s")
    engine.dispose()
    return url


def fixtures(url: str, port: int) -> dict[str, Any]:
    """Slugs, tags and a reader's token (the reader follows 50 busy authors)."""
    engine = create_engine(normalize_url(url))
    with engine.connect() as conn:
        # The newest seeded articles (markdown bodies, comments), not the
        # write mix's own (every run publishes a few hundred, body "b").
        slugs = list(
            conn.scalars(
                text(
                    "SELECT a.slug FROM articles a JOIN users u ON u.id = a.author_id "
                    f"WHERE u.email NOT LIKE '%@{BENCH_DOMAIN}' ORDER BY a.id DESC LIMIT 50"
                )
            )
        )
        tags = list(
            conn.scalars(
                text(
                    "SELECT t.name FROM tags t JOIN article_tags a ON a.tag_id = t.id "
                    "GROUP BY t.name ORDER BY count(*) DESC LIMIT 5"
                )
            )
        )
        authors = list(
            conn.scalars(
                text(
                    "SELECT u.username FROM users u JOIN articles a ON a.author_id = u.id "
                    "GROUP BY u.username ORDER BY count(*) DESC LIMIT 50"
                )
            )
        )
    engine.dispose()
    name = f"bench{int(time.time() * 1000)}"
    token = post(
        port,
        "/api/users",
        {
            "user": {
                "username": name,
                "email": f"{name}@{BENCH_DOMAIN}",
                "password": "bench-password",
            }
        },
    )["user"]["token"]
    for author in authors:
        post(port, f"/api/profiles/{author}/follow", None, token)
    return {"slugs": slugs, "tags": tags, "token": token}


def post(port: int, path: str, body: Any, token: str | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else b""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method="POST")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Token {token}")
    with urllib.request.urlopen(req, timeout=30) as response:
        return json.loads(response.read() or b"null")


def endpoints(fx: dict[str, Any]) -> dict[str, list[str]]:
    slug, tag = fx["slugs"][0], (fx["tags"] or ["x"])[0]
    return {
        "GET /api/articles?limit=20": ["/api/articles?limit=20"],
        "GET /api/articles/:slug": [f"/api/articles/{s}" for s in fx["slugs"][:20]],
        "GET /api/tags": ["/api/tags"],
        "home page": ["/"],
        "tag page": [f"/tag/{tag}"],
        "article page": [f"/article/{slug}"],
    }


SHAPES = [(1, 6), (2, 3), (3, 2), (3, 1), (1, 2), (2, 2)]


class Bench:
    def __init__(
        self,
        seconds: int,
        out: Path,
        repeat: int = 1,
        shapes: list[tuple[int, int]] | None = None,
    ):
        self.seconds = seconds
        self.out = out
        self.repeat = repeat  # the replicas suite's rounds per shape
        self.shapes = shapes or SHAPES
        self.rows: list[dict[str, Any]] = []

    def record(self, suite: str, size: int, topology: Topology, scenario: str, **kw: Any) -> None:
        row = {"suite": suite, "articles": size, "topology": topology.label(),
               "replicas": topology.replicas, "workers": topology.workers,
               "cache": topology.cache, "scenario": scenario} | kw  # fmt: skip
        self.rows.append(row)
        with self.out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{suite:12} {scenario:32} {kw.get('rps', 0):8.1f} req/s  "
              f"p50 {kw.get('p50_ms', 0):7.2f} ms  p99 {kw.get('p99_ms', 0):7.2f} ms  "
              f"errors {kw.get('errors', 0)}")  # fmt: skip

    def run(self, suite: str, size: int, cluster: Cluster, scenario: str, paths: list[str],
            connections: int = 16, warm: bool = True, **kw: Any) -> None:  # fmt: skip
        if warm:
            measure(cluster, paths, 2, connections, **kw)
        result = measure(cluster, paths, self.seconds, connections, **kw)
        self.record(suite, size, cluster.topology, scenario, connections=connections, **result)


def cluster_for(url: str, topology: Topology) -> Cluster:
    return Cluster(topology, url, Path(tempfile.mkdtemp(prefix="conduit-bench-")))


def suite_cache(bench: Bench, size: int, url: str) -> None:
    """Issue 4: the app's cache off vs warm, anonymous and logged in (Nginx's cache off)."""
    for cache in (False, True):
        topology = Topology(replicas=3, workers=2, cache=cache)
        with cluster_for(url, topology) as cluster:
            fx = fixtures(url, cluster.topology.nginx_port)
            for name, paths in endpoints(fx).items():
                for who, token in (("anonymous", None), ("logged in", fx["token"])):
                    bench.run("cache", size, cluster, f"{name} ({who})", paths, token=token)


def suite_replicas(bench: Bench, size: int, url: str) -> None:
    """Issues 6 and 7: replicas x workers, each against the bare ceiling of the same shape.

    Per shape, back to back (this box drifts by 10-20% over minutes, so a
    ratio is only worth something between runs a minute apart): the bare
    WSGI hello, the list with the app's cache off, then warm (``--repeat``
    rounds of the three; the report gives each share and their median). Nginx's
    micro-cache is off here (the replicas are what is measured), but for
    one last run that shows what it adds in front of 3 x 2.
    """
    runs = [("bench.hello:app", True), (None, False), (None, True)] * bench.repeat
    for replicas, workers in bench.shapes:
        for app, cache in runs:
            topology = Topology(replicas=replicas, workers=workers, app=app, cache=cache)
            with cluster_for(url, topology) as cluster:
                if app:
                    bench.run("replicas", size, cluster, HELLO, ["/"])
                else:
                    name = LIST + (" (app cache)" if cache else " (app cache off)")
                    bench.run("replicas", size, cluster, name, [LIST_PATH])
    with cluster_for(url, Topology(replicas=3, workers=2, nginx_cache=True)) as cluster:
        bench.run("replicas", size, cluster, LIST + " (nginx cache)", [LIST_PATH])


def write_mix(bench: Bench, suite: str, size: int, cluster: Cluster, fx: dict[str, Any]) -> None:
    """Publish, comment, favourite and unfavourite (bench/wrk/writes.lua) as
    the fixtures' reader, on the newest seeded articles; 8 connections."""
    bench.run(suite, size, cluster, WRITE_MIX, fx["slugs"][:20], connections=8, warm=False,
              token=fx["token"], script=WRITES)  # fmt: skip


# The scale suite's topologies at every dataset size: the database's own cost
# (app cache off) with 3 replicas and with 1, and what the cache leaves of it.
SCALE_TOPOLOGIES = [
    Topology(replicas=3, workers=2, cache=False),
    Topology(replicas=1, workers=2, cache=False),
    Topology(replicas=3, workers=2, cache=True),
]


def suite_scale(bench: Bench, size: int, url: str) -> None:
    """Issue 7, at every ``--sizes``: anonymous browsing (the API list, the
    home, article and tag pages, a deep offset), the logged-in feed and the
    write mix, in each of ``SCALE_TOPOLOGIES``. The report compares each
    scenario and topology across sizes (bench/report.py ``size_ratios``)."""
    for topology in SCALE_TOPOLOGIES:
        with cluster_for(url, topology) as cluster:
            fx = fixtures(url, cluster.topology.nginx_port)
            for name, paths, token in [
                ("GET /api/articles?limit=20", ["/api/articles?limit=20"], None),
                ("GET /api/articles/feed", ["/api/articles/feed?limit=20"], fx["token"]),
                ("home page", ["/"], None),
                ("article page", [f"/article/{s}" for s in fx["slugs"][:20]], None),
                ("tag page", [f"/tag/{(fx['tags'] or ['x'])[0]}"], None),
                ("GET /api/articles?offset=5000", ["/api/articles?limit=20&offset=5000"], None),
            ]:
                bench.run("scale", size, cluster, name, paths, token=token)
            if topology.cache and topology.replicas == 3:
                write_mix(bench, "scale", size, cluster, fx)


def suite_pooling(bench: Bench, size: int, url: str) -> None:
    """Issue 7: what PgBouncer (transaction pooling) costs per request: the
    uncached list, the feed and the write mix straight to Postgres and
    through PgBouncer, 3 x 2. Behind it the app gives up server-side
    prepared statements and reads without a transaction (docs/database.md)."""
    for pgbouncer in (False, True):
        topology = Topology(replicas=3, workers=2, cache=False, pgbouncer=pgbouncer)
        with cluster_for(url, topology) as cluster:
            fx = fixtures(url, cluster.topology.nginx_port)
            bench.run("pooling", size, cluster, LIST, [LIST_PATH])
            bench.run("pooling", size, cluster, "GET /api/articles/feed",
                      ["/api/articles/feed?limit=20"], token=fx["token"])  # fmt: skip
            write_mix(bench, "pooling", size, cluster, fx)


def suite_writes(bench: Bench, size: int, url: str) -> None:
    with cluster_for(url, Topology(replicas=3, workers=2)) as cluster:
        fx = fixtures(url, cluster.topology.nginx_port)
        write_mix(bench, "writes", size, cluster, fx)


def suite_concurrency(bench: Bench, size: int, url: str) -> None:
    with cluster_for(url, Topology(replicas=3, workers=2)) as cluster:
        for connections in (1, 4, 16, 64):
            bench.run("concurrency", size, cluster, LIST + " (app cache)", [LIST_PATH],
                      connections=connections)  # fmt: skip


def suite_jobs(bench: Bench, size: int, url: str) -> None:
    """Issue 5: export start latency while the worker is busy (open loop, paced),
    notification throughput; the steps are in bench/jobs.py."""
    from bench import jobs

    def record(scenario: str, **numbers: Any) -> None:
        bench.record("jobs", size, jobs.TOPOLOGY, scenario, **numbers)

    jobs.run(record, url, bench.seconds)


SUITES = {
    "cache": suite_cache,
    "replicas": suite_replicas,
    "scale": suite_scale,
    "writes": suite_writes,
    "pooling": suite_pooling,
    "concurrency": suite_concurrency,
    "jobs": suite_jobs,
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--suites", default=",".join(SUITES))
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=1, help="replicas suite: rounds per shape")
    parser.add_argument("--shapes", default="", help="replicas suite: e.g. 3x2,3x1 (default: all)")
    parser.add_argument("--name", default=datetime.now(UTC).strftime("%Y%m%d-%H%M%S"))
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{args.name}.jsonl"
    shapes = [tuple(int(n) for n in shape.split("x")) for shape in args.shapes.split(",") if shape]
    bench = Bench(args.seconds, out, args.repeat, shapes)  # type: ignore[arg-type]
    for size in (int(s) for s in args.sizes.split(",")):
        url = ensure_dataset(size)
        for suite in args.suites.split(","):
            if suite == "scale" or size == min(int(s) for s in args.sizes.split(",")):
                SUITES[suite](bench, size, url)
    from bench.report import write_report

    write_report(out)


if __name__ == "__main__":
    main()
