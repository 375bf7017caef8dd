"""Issue 5's measurements: starting an export while the workers are busy,
and notification throughput for an author with 10,000 followers.

Runs the cluster with a Celery worker (CLUSTER_JOBS=1) sending mail to a
local SMTP sink (aiosmtpd, 127.0.0.1), so the messages really go over SMTP.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.harness import ROOT, Cluster, Topology, wrk
from myapp.db import normalize_url

SMTP_PORT = 6690
EXPORTS = ROOT / "bench" / "wrk" / "exports.lua"


def smtp_sink() -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink"]
    command += ["-l", f"127.0.0.1:{SMTP_PORT}"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    return proc


def jobs_cluster(url: str) -> Cluster:
    cluster = Cluster(Topology(replicas=3, workers=2), url, Path(tempfile.mkdtemp(prefix="cb-")))
    cluster.env.update(
        CLUSTER_JOBS="1",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/2",
        CELERY_QUEUE=f"bench-{uuid.uuid4().hex[:6]}",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(SMTP_PORT),
        EXPORTS_DIR=str(Path(tempfile.mkdtemp(prefix="cb-exports-"))),
    )
    return cluster


def add_followers(url: str, author: str, count: int) -> None:
    """``count`` new users following ``author`` (plain SQL: this is set-up)."""
    tag = uuid.uuid4().hex[:6]
    engine = create_engine(normalize_url(url))
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (username, email, password_hash, created_at, updated_at) "
                "SELECT 'fan' || g || '_' || :tag, 'fan' || g || '_' || :tag || '@bench.example',"
                " 'x', now(), now() FROM generate_series(1, :n) g"
            ),
            {"tag": tag, "n": count},
        )
        conn.execute(
            text(
                "INSERT INTO follows (follower_id, followed_id, created_at) "
                "SELECT u.id, a.id, now() FROM users u, users a "
                "WHERE u.username LIKE 'fan%\\_' || :tag AND a.username = :author"
            ),
            {"tag": tag, "author": author},
        )
    engine.dispose()


def notification_throughput(url: str, port: int, followers: int) -> dict[str, Any]:
    from bench.run import post  # the API client

    name = f"star{uuid.uuid4().hex[:8]}"
    user = post(port, "/api/users", {"user": {"username": name, "email": f"{name}@b.example",
                                              "password": "bench-password"}})["user"]  # fmt: skip
    add_followers(url, name, followers)
    started = time.monotonic()
    article = post(port, "/api/articles", {"article": {"title": f"News {name}",
                   "description": "d", "body": "b"}}, user["token"])["article"]  # fmt: skip
    engine = create_engine(normalize_url(url))
    sent = 0
    deadline = started + 900
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            sent = conn.scalar(
                text(
                    "SELECT count(*) FROM notifications n JOIN articles a ON a.id = n.article_id "
                    "WHERE a.slug = :s AND n.status = 'sent'"
                ),
                {"s": article["slug"]},
            )
        if sent >= followers:
            break
        time.sleep(0.5)
    elapsed = time.monotonic() - started
    engine.dispose()
    return {
        "followers": followers,
        "sent": sent,
        "seconds": elapsed,
        "messages_per_s": sent / elapsed,
    }


def export_start_latency(port: int, seconds: int, connections: int) -> dict[str, Any]:
    """wrk POSTs /api/user/exports for 50 users while the worker works through the queue."""
    from bench.run import post

    tokens = []
    for _ in range(50):
        name = f"exp{uuid.uuid4().hex[:8]}"
        body = {"user": {"username": name, "email": f"{name}@b.example", "password": "bench-pw-1"}}
        tokens.append(post(port, "/api/users", body)["user"]["token"])
    os.environ["BENCH_TOKENS"] = "|".join(tokens)
    try:
        return wrk(port, ["/api/user/exports"], seconds, connections, script=EXPORTS)
    finally:
        os.environ.pop("BENCH_TOKENS", None)
