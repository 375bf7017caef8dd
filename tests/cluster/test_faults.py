"""Fault tests: the cluster (nginx + 3 gunicorn replicas) under steady load
survives losing, restarting and draining replicas, and a Postgres restart.

Run by .ci/run (`make test-cluster`), not by `make test`: each test runs a
few seconds of real traffic on 127.0.0.1.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from myapp.db import normalize_url
from tests.cluster.harness import Cluster, Load, OwnPostgres, make_cluster, request, wait_http
from tests.conftest import create_database, drop_database

pytestmark = pytest.mark.cluster

PATHS = ["/api/articles?limit=5", "/api/tags", "/healthz", "/api/articles?limit=1&offset=1"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    url = create_database()
    cluster = make_cluster(url, base_port=6751, nginx_port=8091)
    try:
        cluster.up()
        yield cluster
    finally:
        cluster.down()
        drop_database(url)


def seen_replicas(cluster: Cluster, rounds: int = 30) -> set[str]:
    seen = set()
    for n in range(rounds):
        _, headers, _ = request(cluster.nginx_port, f"/api/tags?probe={time.time()}-{n}")
        seen.add(headers.get("X-Replica", "?"))
    return seen


def test_all_replicas_serve_behind_nginx(cluster: Cluster) -> None:
    assert seen_replicas(cluster) == {"web-1", "web-2", "web-3"}


def test_sigkill_one_replica_loses_no_get(cluster: Cluster) -> None:
    with Load(cluster.nginx_port, PATHS) as load:
        time.sleep(2)
        cluster.signal_replica(2, signal.SIGKILL)
        time.sleep(4)
    assert load.total > 50
    assert load.failures() == {}, (load.failures(), load.errors[:5])
    # Brought back, it rejoins the rotation.
    cluster.start_replica(2)
    deadline = time.monotonic() + 20
    while "web-2" not in seen_replicas(cluster, 10):
        assert time.monotonic() < deadline, "web-2 never rejoined"
        time.sleep(0.5)


def test_rolling_restart_under_load(cluster: Cluster) -> None:
    with Load(cluster.nginx_port, PATHS) as load:
        for i in range(1, cluster.replicas + 1):
            cluster.signal_replica(i, signal.SIGTERM)
            cluster.wait_replica_gone(i)
            cluster.start_replica(i)
    assert load.total > 50
    assert load.failures() == {}, (load.failures(), load.errors[:5])
    assert set(load.replicas) >= {"web-1", "web-2", "web-3"}


def test_sigterm_lets_the_request_in_flight_finish(cluster: Cluster) -> None:
    """A request whose body is still arriving when SIGTERM comes is answered."""
    port = cluster.replica_port(3)
    body = json.dumps({"user": {"email": "nobody@example.com", "password": "password123"}})
    head = (
        "POST /api/users/login HTTP/1.1\r\nHost: localhost\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head.encode() + body[:10].encode())
        time.sleep(0.5)
        cluster.signal_replica(3, signal.SIGTERM)
        time.sleep(1)
        sock.sendall(body[10:].encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 401 Unauthorized", answer[:300]
    assert b'"credentials"' in answer
    cluster.wait_replica_gone(3)
    cluster.start_replica(3)


def test_postgres_restart_gives_clean_503s_then_recovers() -> None:
    pg = OwnPostgres(port=6799)
    pg.init()
    pg.start()
    subprocess_env_cluster = None
    try:
        admin = create_engine(normalize_url(pg.url()), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text('CREATE DATABASE "conduit"'))
        admin.dispose()
        cluster = make_cluster(pg.url("conduit"), base_port=6761, nginx_port=8092, replicas=2)
        subprocess_env_cluster = cluster
        cluster.up()
        # /readyz asks the database on every call; a profile read may be
        # answered from the cache (Redis) even while the database is down.
        paths = ["/readyz", "/api/profiles/nobody-here"]
        with Load(cluster.nginx_port, paths, threads=3) as load:
            time.sleep(1.5)
            pg.stop()
            time.sleep(3)
            during = dict(load.statuses)
            pg.start()
            restarted = time.monotonic()
            recovered = None
            while time.monotonic() - restarted < 20:
                if request(cluster.nginx_port, "/readyz")[0] == 200:
                    recovered = time.monotonic() - restarted
                    break
                time.sleep(0.2)
            time.sleep(2)
        assert during.get(503, 0) > 0, during
        assert recovered is not None and recovered < 10, recovered
        # Only clean answers: 200 / 404 when up, 503 while down — no 500,
        # no dropped connection.
        assert set(load.statuses) <= {200, 404, 503}, (load.statuses, load.errors[:5])
        # No stuck worker: every replica answers a database read again.
        for i in range(1, cluster.replicas + 1):
            wait_http(cluster.replica_port(i), "/readyz", timeout=10)
            status, _, _ = request(cluster.replica_port(i), "/api/profiles/nobody-here")
            assert status == 404
    finally:
        if subprocess_env_cluster is not None:
            subprocess_env_cluster.down()
        pg.destroy()
