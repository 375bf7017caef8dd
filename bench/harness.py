"""Benchmark plumbing: start a cluster, run wrk, read the replicas' metrics.

Every number the report shows comes from here: wrk's own latency
histogram, and the deltas of the app's Prometheus counters around each run
(requests per replica, SQL statements per request, cache hit ratio).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import cpu

ROOT = Path(__file__).resolve().parent.parent
WRK_SCRIPT = ROOT / "bench" / "wrk" / "conduit.lua"
METRIC = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>[0-9.e+-]+)$")


@dataclass
class Topology:
    """One cluster configuration under test."""

    replicas: int = 3
    workers: int = 2
    cache: bool = True
    app: str | None = None  # None: Conduit; "bench.hello:app": the bare-WSGI ceiling
    # Nginx's micro-cache: off, since the app behind Nginx is what is measured,
    # but for the run that shows what the micro-cache adds.
    nginx_cache: bool = False
    # PgBouncer (transaction pooling) between the replicas and Postgres.
    pgbouncer: bool = False
    base_port: int = 6801
    nginx_port: int = 8099

    def label(self) -> str:
        app = "hello" if self.app else "conduit"
        cache = "cache on" if self.cache else "cache off"
        edge = ", nginx micro-cache" if self.nginx_cache else ""
        edge += ", PgBouncer" if self.pgbouncer else ""
        return f"{app}, {self.replicas} replica(s) x {self.workers} workers, {cache}{edge}"


@dataclass
class Cluster:
    topology: Topology
    database_url: str
    run_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        t = self.topology
        self.env = dict(os.environ)
        self.env.update(
            CLUSTER_DIR=str(self.run_dir),
            REPLICAS=str(t.replicas),
            WEB_CONCURRENCY=str(t.workers),
            BASE_PORT=str(t.base_port),
            NGINX_PORT=str(t.nginx_port),
            DATABASE_URL=self.database_url,
            CACHE_ENABLED="true" if t.cache else "false",
            CACHE_PREFIX=f"conduit-bench-{os.getpid()}:",
            CLUSTER_INITDB_ARGS="--no-demo",
            NGINX_AUTH_RATE="10000",
            NGINX_MICROCACHE="micro" if t.nginx_cache else "off",
            LOG_LEVEL="warning",
        )
        self.env["CLUSTER_JOBS"] = "0"
        if t.pgbouncer:
            self.env.update(PGBOUNCER="1", PGBOUNCER_PORT=str(t.base_port - 100))
        if t.app:
            self.env["CLUSTER_APP"] = t.app

    def __enter__(self) -> Cluster:
        subprocess.run(["bash", "cluster/up.sh"], cwd=ROOT, env=self.env, check=True, timeout=300)
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["bash", "cluster/down.sh"], cwd=ROOT, env=self.env, timeout=120)

    def replica_ports(self) -> list[int]:
        return [self.topology.base_port + i for i in range(self.topology.replicas)]

    def metrics(self) -> dict[int, dict[str, float]]:
        """Each replica's counters, straight from its own /metrics."""
        if self.topology.app:
            return {}
        return {port: scrape(port) for port in self.replica_ports()}


# Fewer requests than this reached the replicas (Nginx answered the rest): no
# cache hit ratio is reported for the run.
MIN_APP_REQUESTS = 100


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    totals: dict[str, float] = {}
    for line in text.splitlines():
        match = METRIC.match(line)
        if not match:
            continue
        name, labels = match["name"], match["labels"] or ""
        value = float(match["value"])
        if name == "conduit_http_requests_total" and 'route="metrics"' not in labels:
            totals["requests"] = totals.get("requests", 0) + value
        elif name == "conduit_db_statements_total":
            totals["statements"] = totals.get("statements", 0) + value
        elif name == "conduit_cache_events_total" and 'region="generations"' not in labels:
            for event in ("hits", "misses"):
                if f'event="{event}"' in labels:
                    totals[f"cache_{event}"] = totals.get(f"cache_{event}", 0) + value
    return totals


def wrk(
    port: int,
    paths: list[str],
    seconds: int,
    connections: int,
    token: str | None = None,
    script: Path = WRK_SCRIPT,
) -> dict[str, Any]:
    env = dict(os.environ, BENCH_PATHS="|".join(paths), BENCH_TOKEN=token or "")
    env["BENCH_WRK_DIR"] = str(script.parent)  # for dofile("summary.lua")
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    command += ["-s", str(script), f"http://127.0.0.1:{port}"]
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60)
    line = next(x for x in out.stdout.splitlines() if x.startswith("JSON "))
    result: dict[str, Any] = json.loads(line[5:])
    seconds_taken = result["duration_us"] / 1e6
    result["rps"] = result["requests"] / seconds_taken if seconds_taken else 0.0
    result["errors"] = sum(
        result[k] for k in ("non2xx", "connect_errors", "read_errors", "write_errors", "timeouts")
    )
    return result


def measure(
    cluster: Cluster, paths: list[str], seconds: int, connections: int, **kw: Any
) -> dict[str, Any]:
    """wrk through nginx, with the app-side accounting around it."""
    before = cluster.metrics()
    cpu_before = cpu.snapshot()
    result = wrk(cluster.topology.nginx_port, paths, seconds, connections, **kw)
    cpu_after = cpu.snapshot()
    after = cluster.metrics()
    # Where the CPU went, per request (bench/cpu.py): app, database, proxy...
    result["cpu_ms_per_request"] = cpu.per_request(cpu_before, cpu_after, result["requests"])
    result.update(account(before, after, cluster.replica_ports(), result["requests"]))
    return result


def account(
    before: dict[int, dict[str, float]],
    after: dict[int, dict[str, float]],
    ports: list[int],
    requests: int,
) -> dict[str, Any]:
    """The app's counters over one run (``scrape`` of each replica before and
    after) for ``requests`` made by the client: requests per replica, SQL
    statements per request, the app cache's hit ratio."""

    def delta(port: int, name: str) -> float:
        return after[port].get(name, 0) - before.get(port, {}).get(name, 0)

    per_replica = {f"web-{i + 1}": delta(p, "requests") for i, p in enumerate(ports) if p in after}
    result: dict[str, Any] = {"requests_per_replica": per_replica}
    app_requests = sum(per_replica.values())
    if app_requests and requests:
        statements = sum(delta(p, "statements") for p in after)
        hits = sum(delta(p, "cache_hits") for p in after)
        misses = sum(delta(p, "cache_misses") for p in after)
        # Per request the client made: with Nginx's micro-cache most never
        # reach a replica (and cost no SQL). Without it the two counts agree
        # to within the requests in flight at the edges.
        result["queries_per_request"] = statements / requests
        # The app cache's own ratio, when enough requests reached it to say.
        enough = app_requests >= MIN_APP_REQUESTS and hits + misses
        result["cache_hit_ratio"] = hits / (hits + misses) if enough else None
    return result
