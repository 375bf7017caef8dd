"""Issue 5's measurements: starting an export while the workers are busy,
and notification throughput for an author with 10,000 followers.

The cluster runs with a Celery worker (CLUSTER_JOBS=1, 2 pool processes)
sending mail to a local SMTP sink (aiosmtpd, 127.0.0.1), so messages really
go over SMTP. In order:

1. **throughput**: an author with 10,000 followers publishes; the time until
   every notification is ``sent``, nothing else running;
2. **floor**: the paced client against nginx's own ``/nginx-health`` (no
   app): what the client and nginx add by themselves;
3. **no backlog**: ``POST /api/user/exports`` paced at ``RATE``/s, each request
   by a user of its own (so each one really starts an export: a job row, a
   commit, a message); the worker runs only those (small) exports;
4. **busy**: the author publishes three more articles (30,000 notifications)
   and the ten most prolific authors ask for their exports; once mail is
   going out, the same paced POSTs in blocks of ``BLOCK_SECONDS``, the worker
   (and the SMTP sink, which stands in for a mail relay on another host) at
   nice 10 (cluster/up.sh's default) and at nice 0, in the order of
   ``NICE_ORDER`` (10, 0, 0, 10, 10, 0) so a drift in the load weighs on both
   alike. After each block: the broker's queue length, jobs running and
   notifications still pending, to show the worker was still busy;
5. **commit probe**: insert + commit with ``synchronous_commit`` on and off,
   interleaved, while the worker is still busy: what an fsync costs here;
6. **capacity** (secondary): wrk, closed loop, 8 connections, on the same
   endpoint: the saturation throughput, not a latency figure.

The users, follows and articles made here are deleted at the end, so the
shared dataset does not grow from run to run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from bench.harness import ROOT, Cluster, Topology, wrk
from bench.paced import Request, Sample, paced, percentile, summary
from myapp.db import normalize_url
from myapp.security import Tokens

SMTP_PORT = 6690
BROKER = "redis://127.0.0.1:6379/2"
EXPORTS = ROOT / "bench" / "wrk" / "exports.lua"
RATE = 40.0  # requests/s: a busy site's "export my data" clicks, and then some
BLOCK_SECONDS = 10
NICE_ORDER = (10, 0, 0, 10, 10, 0)
FOLLOWERS = 10_000
SECRET = "bench-jobs-" + "s" * 40
PATH = "/api/user/exports"
TOPOLOGY = Topology(replicas=3, workers=2)


def smtp_sink() -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink"]
    command += ["-l", f"127.0.0.1:{SMTP_PORT}"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    return proc


def jobs_cluster(url: str) -> Cluster:
    cluster = Cluster(TOPOLOGY, url, Path(tempfile.mkdtemp(prefix="cb-")))
    cluster.env.update(
        CLUSTER_JOBS="1",
        CELERY_BROKER_URL=BROKER,
        CELERY_QUEUE=f"bench-{uuid.uuid4().hex[:6]}",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(SMTP_PORT),
        EXPORTS_DIR=str(Path(tempfile.mkdtemp(prefix="cb-exports-"))),
        # Known, so the bench can sign its users' tokens (no argon2 logins).
        SECRET_KEY=SECRET,
    )
    return cluster


# -- set-up (plain SQL) ------------------------------------------------------------


def make_users(engine: Engine, tag: str, count: int) -> list[int]:
    """``count`` users named ``b<tag>_<n>``; their ids."""
    with engine.begin() as conn:
        return list(
            conn.scalars(
                text(
                    "INSERT INTO users (username, email, password_hash, created_at, updated_at) "
                    "SELECT 'b' || :tag || '_' || g, 'b' || :tag || '_' || g || '@bench.example',"
                    " 'x', now(), now() FROM generate_series(1, :n) g RETURNING id"
                ),
                {"tag": tag, "n": count},
            )
        )


def follow(engine: Engine, author: int, followers: list[int]) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO follows (follower_id, followed_id, created_at) "
                "SELECT f, :a, now() FROM unnest(CAST(:f AS bigint[])) f"
            ),
            {"a": author, "f": followers},
        )


def drop_users(engine: Engine, tag: str) -> None:
    """The bench's users, and (by cascade) their follows, articles, jobs, notifications."""
    with engine.begin() as conn:
        conn.execute(
            text("DELETE FROM users WHERE username LIKE 'b' || :tag || '\\_%'"), {"tag": tag}
        )


def post(port: int, path: str, body: Any, token: str) -> Any:
    from bench.run import post as api_post

    return api_post(port, path, body, token)


def publish(engine: Engine, port: int, token: str) -> int:
    """A new article by ``token``'s user (its followers get mail); its id."""
    body = {"article": {"title": f"News {uuid.uuid4().hex[:8]}", "description": "d", "body": "b"}}
    slug = post(port, "/api/articles", body, token)["article"]["slug"]
    with engine.connect() as conn:
        return int(conn.scalar(text("SELECT id FROM articles WHERE slug = :s"), {"s": slug}))


def notifications(engine: Engine, articles: list[int], status: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.scalar(
                text(
                    "SELECT count(*) FROM notifications "
                    "WHERE article_id = ANY(CAST(:a AS bigint[])) AND status = :s"
                ),
                {"a": articles, "s": status},
            )
        )


# -- the worker's priority -------------------------------------------------------


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants (the worker's pool processes)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def renice(pids: list[int], value: int) -> None:
    """Every thread of ``pids`` to nice ``value`` (Linux: the nice is per thread)."""
    for pid in pids:
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                os.setpriority(os.PRIO_PROCESS, int(tid), value)
        except (FileNotFoundError, ProcessLookupError):
            continue


# -- the measurements --------------------------------------------------------------


class Exports:
    """Paced ``POST /api/user/exports``, each by a user not used before."""

    def __init__(self, port: int, tokens: list[str]):
        self.port, self.tokens, self.used = port, tokens, 0

    def paced(self, seconds: float) -> list[Sample]:
        first = self.used
        self.used += int(RATE * seconds)
        if self.used > len(self.tokens):
            raise RuntimeError("not enough bench users for this many requests")

        def request(i: int) -> Request:
            token = self.tokens[first + i]
            return ("POST", PATH, {"Authorization": f"Token {token}", "Content-Length": "0"})

        return paced(self.port, request, RATE, seconds)


def started(samples: list[Sample]) -> int:
    """Distinct new (queued) jobs among the answers: every POST must start one."""
    ids = set()
    for s in samples:
        if s.status == 202:
            job = json.loads(s.body)["job"]
            if job["status"] == "queued":
                ids.add(job["id"])
    return len(ids)


def export_summary(samples: list[Sample]) -> dict[str, Any]:
    return summary(samples, RATE) | {"started": started(samples)}


class Busy:
    """What shows the worker busy: the queue, running jobs, mail still to send."""

    def __init__(self, engine: Engine, queue: str, since: float, articles: list[int]):
        self.engine, self.queue, self.articles = engine, queue, articles
        self.since = since
        self.broker = redis.Redis.from_url(BROKER)

    def snapshot(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            running = conn.scalar(
                text("SELECT count(*) FROM jobs WHERE status = 'running' AND updated_at > "
                     "to_timestamp(:t)"), {"t": self.since},
            )  # fmt: skip
        return {
            "queue_length": int(self.broker.llen(self.queue)),  # type: ignore[arg-type]
            "jobs_running": int(running or 0),
            "pending_notifications": notifications(self.engine, self.articles, "pending"),
            "sent_notifications": notifications(self.engine, self.articles, "sent"),
        }


def notification_throughput(engine: Engine, port: int, token: str) -> dict[str, Any]:
    begin = time.monotonic()
    article = publish(engine, port, token)
    sent = 0
    while time.monotonic() < begin + 300:
        sent = notifications(engine, [article], "sent")
        if sent >= FOLLOWERS:
            break
        time.sleep(0.25)
    elapsed = time.monotonic() - begin
    return {"followers": FOLLOWERS, "sent": sent, "seconds": elapsed,
            "messages_per_s": sent / elapsed}  # fmt: skip


def commit_probe(engine: Engine, rounds: int = 300) -> dict[str, Any]:
    """insert + commit, alternately with synchronous_commit on and off."""
    times: dict[str, list[float]] = {"on": [], "off": []}
    with engine.connect() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS bench_commit_probe (at timestamptz)"))
        conn.commit()
        for i in range(2 * rounds):
            mode = "on" if i % 2 == 0 else "off"
            begin = time.perf_counter()
            conn.execute(text(f"SET LOCAL synchronous_commit = {mode}"))
            conn.execute(text("INSERT INTO bench_commit_probe VALUES (now())"))
            conn.commit()
            times[mode].append((time.perf_counter() - begin) * 1000)
        conn.execute(text("DROP TABLE bench_commit_probe"))
        conn.commit()
    result: dict[str, Any] = {"count": rounds}
    for mode, values in times.items():
        for q in (50, 99):
            result[f"sync_{mode}_p{q}_ms"] = percentile(values, q)
        result[f"sync_{mode}_max_ms"] = max(values)
    result["p50_ms"], result["p99_ms"] = result["sync_on_p50_ms"], result["sync_on_p99_ms"]
    return result


def busy_blocks(record: Any, exports: Exports, busy: Busy, pids: Any) -> None:
    """The paced POSTs in blocks, the worker's nice alternating (NICE_ORDER)."""
    samples: dict[int, list[Sample]] = {}
    blocks: dict[int, list[dict[str, Any]]] = {}
    for nice in NICE_ORDER:
        renice(pids(), nice)
        before = busy.snapshot()
        block = exports.paced(BLOCK_SECONDS)
        after = busy.snapshot()
        samples.setdefault(nice, []).extend(block)
        sent = after["sent_notifications"] - before["sent_notifications"]
        numbers = summary(block, RATE)
        state = after | {
            "sent_during_block": sent,
            "rps": numbers["rps"],
            "p99_ms": numbers["p99_ms"],
        }
        blocks.setdefault(nice, []).append(state)
    renice(pids(), NICE_ORDER[0])
    for nice in dict.fromkeys(NICE_ORDER):
        still_busy = all(b["queue_length"] > 0 or b["jobs_running"] > 0 for b in blocks[nice])
        result = export_summary(samples[nice])
        # The blocks are apart in time: the rate is each block's, averaged.
        result["rps"] = sum(b["rps"] for b in blocks[nice]) / len(blocks[nice])
        record(f"POST {PATH} paced {RATE:.0f}/s, worker busy, worker nice {nice}",
               **result, blocks=blocks[nice], busy_at_end_of_every_block=still_busy)  # fmt: skip


def run(record: Any, url: str, seconds: int) -> None:
    """The whole suite; ``record(scenario, **numbers)`` keeps each result."""
    engine = create_engine(normalize_url(url))
    tag = uuid.uuid4().hex[:6]
    tokens = Tokens(SECRET, 86400)
    requests = int(RATE * (2 + BLOCK_SECONDS * (1 + len(NICE_ORDER))))
    per_user = make_users(engine, tag, requests + 51)
    star = per_user.pop()
    follow(engine, star, make_users(engine, tag + "f", FOLLOWERS))
    star_token = tokens.issue(star)
    sink = smtp_sink()
    cluster = jobs_cluster(url)
    queue = cluster.env["CELERY_QUEUE"]
    try:
        with cluster:
            port = cluster.topology.nginx_port
            record("notify 10,000 followers (SMTP)",
                   **notification_throughput(engine, port, star_token))  # fmt: skip
            floor = paced(port, lambda i: ("GET", "/nginx-health", {}), RATE, BLOCK_SECONDS)
            record(f"paced {RATE:.0f}/s GET /nginx-health (client + nginx floor)",
                   **summary(floor, RATE, ok=200))  # fmt: skip
            exports = Exports(port, [tokens.issue(u) for u in per_user])
            exports.paced(2)  # warm-up: each web process opens its broker connection
            record(f"POST {PATH} paced {RATE:.0f}/s, no backlog",
                   **export_summary(exports.paced(BLOCK_SECONDS)))  # fmt: skip

            since = time.time()
            articles = [publish(engine, port, star_token) for _ in range(3)]
            busy = Busy(engine, queue, since, articles)
            with engine.connect() as conn:
                authors = list(conn.scalars(text(
                    "SELECT author_id FROM articles GROUP BY 1 ORDER BY count(*) DESC LIMIT 10"
                )))  # fmt: skip
            for author in authors:  # big exports in the queue too
                post(port, PATH, None, tokens.issue(author))
            deadline = time.monotonic() + 60
            while busy.snapshot()["sent_notifications"] < 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            worker = int((cluster.run_dir / "pids" / "worker.pid").read_text())
            busy_blocks(record, exports, busy, lambda: [*process_tree(worker), sink.pid])
            record("insert+commit, synchronous_commit on vs off (worker busy)",
                   **commit_probe(engine) | busy.snapshot())  # fmt: skip
            capacity = wrk_capacity(port, exports.tokens[-50:], seconds)
            record(f"POST {PATH} closed loop wrk c=8, 50 users (capacity)", connections=8,
                   **capacity | busy.snapshot())  # fmt: skip
    finally:
        sink.terminate()
        kombu = [f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}"]
        redis.Redis.from_url(BROKER).delete(queue, *kombu)
        drop_users(engine, tag)
        drop_users(engine, tag + "f")
        engine.dispose()


def wrk_capacity(port: int, tokens: list[str], seconds: int) -> dict[str, Any]:
    """Closed loop: a user's second POST while theirs is queued returns it (no new job)."""
    os.environ["BENCH_TOKENS"] = "|".join(tokens)
    try:
        return wrk(port, [PATH], seconds, 8, script=EXPORTS)
    finally:
        os.environ.pop("BENCH_TOKENS", None)
