"""Read replicas, against a real streaming replica.

The module starts a Postgres primary of its own and a replica made from it
with ``pg_basebackup -R`` (tests/pg.py), both on free loopback ports, and
an app configured with ``sqlalchemy.replica_urls``. Which server answered
each statement is observed on the wire: every statement is recorded with
the port of the connection it was sent on.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import webtest
from sqlalchemy import create_engine, event, pool, text
from sqlalchemy.engine import Engine

from myapp.config import configure
from myapp.db import normalize_url
from myapp.db_replicas import ReplicaRouter
from myapp.scripts import migrate
from tests.conftest import ROOT, Api, base_settings
from tests.pg import OwnPostgres, wait_for

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run Postgres as postgres"),
    # One pair of servers per run: every test of the module in one xdist worker.
    pytest.mark.xdist_group("replicas"),
]

DATABASE = "conduit"


class Servers:
    def __init__(self, primary: OwnPostgres, replica: OwnPostgres):
        self.primary = primary
        self.replica = replica
        self.admin = create_engine(
            normalize_url(primary.url(DATABASE)),
            poolclass=pool.NullPool,
            isolation_level="AUTOCOMMIT",
        )

    def on_replica(self, sql: str) -> Any:
        engine = create_engine(
            normalize_url(self.replica.url(DATABASE)),
            poolclass=pool.NullPool,
            isolation_level="AUTOCOMMIT",
        )
        try:
            with engine.connect() as conn:
                return conn.execute(text(sql)).scalar()
        finally:
            engine.dispose()

    def caught_up(self) -> bool:
        with self.admin.connect() as conn:
            lsn = conn.execute(text("SELECT pg_current_wal_lsn()::text")).scalar()
        return bool(self.on_replica(f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"))


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    primary = OwnPostgres(0)
    replica: OwnPostgres | None = None
    try:
        primary.init()
        primary.start_on_a_free_port(6641, 6659, "wal_level=replica", taken=set())
        admin = create_engine(
            normalize_url(primary.url()), poolclass=pool.NullPool, isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {DATABASE}"))
        admin.dispose()
        migrate.upgrade(str(ROOT / "development.ini"), normalize_url(primary.url(DATABASE)))
        replica = primary.replica(0)
        replica.start_on_a_free_port(6641, 6659, taken={primary.port})
        servers = Servers(primary, replica)
        wait_for(servers.caught_up, 30, "the replica to catch up")
        assert servers.on_replica("SELECT pg_is_in_recovery()") is True
        yield servers
        servers.admin.dispose()
    finally:
        if replica is not None:
            replica.destroy()
        primary.destroy()


class App:
    """The app on the primary + replica, and which port each statement went to."""

    def __init__(self, servers: Servers, **settings: str):
        config = (
            base_settings(normalize_url(servers.primary.url(DATABASE)))
            | {
                "sqlalchemy.replica_urls": normalize_url(servers.replica.url(DATABASE)),
                "db.replica_check_interval": "0.2",
                "db.replica_max_lag": "30",
                "db.replica_connect_timeout": "2",
                "db.primary_after_write": "30",
                "redis.url": "redis://127.0.0.1:6379/0",
                "cache.prefix": f"conduit-replicas-{uuid.uuid4().hex[:8]}:",
                # The database must be hit for every read, or there is nothing to route.
                "cache.enabled": "false",
            }
            | settings
        )
        config["_explicit"] = list(config)
        self.wsgi = configure(config).make_wsgi_app()
        self.api = Api(webtest.TestApp(self.wsgi, extra_environ={"HTTP_HOST": "localhost"}))
        self.router: ReplicaRouter = self.wsgi.registry["db_router"]
        self.ports: list[int] = []
        self.thread = threading.get_ident()
        for engine in self.engines:
            event.listen(engine, "before_cursor_execute", self._record)

    @property
    def engines(self) -> list[Engine]:
        return [self.wsgi.registry["db_engine"], *(r.engine for r in self.router.replicas)]

    def _record(self, conn: Any, *args: Any) -> None:
        # This thread's requests only (background jobs run in another).
        if threading.get_ident() == self.thread:
            self.ports.append(conn.engine.url.port)

    def served_by(self, call: Any) -> tuple[Any, set[int]]:
        """Run ``call``; return its result and the ports its statements went to."""
        self.ports.clear()
        result = call()
        return result, set(self.ports)

    def close(self) -> None:
        for engine in self.engines:
            engine.dispose()


@pytest.fixture
def app(servers: Servers) -> Iterator[App]:
    app = App(servers)
    yield app
    app.close()


def test_the_replica_is_a_real_streaming_replica(servers: Servers, app: App) -> None:
    replica = app.router.replicas[0]
    with replica.engine.connect() as conn:
        in_recovery, port = conn.execute(
            text("SELECT pg_is_in_recovery(), inet_server_port()")
        ).one()
    assert (in_recovery, port) == (True, servers.replica.port)
    # A replica just made may not have replayed its first heartbeat yet
    # (seen under a loaded test run): it becomes usable, within seconds.
    deadline = time.monotonic() + 20
    app.router.check(replica)
    while not replica.usable and time.monotonic() < deadline:
        time.sleep(0.2)
        app.router.check(replica)
    assert replica.usable and replica.lag is not None and replica.lag <= app.router.max_lag


def test_reads_go_to_the_replica_and_writes_to_the_primary(servers: Servers, app: App) -> None:
    # Routing makes each request's session: no connection kept for reads (myapp.db_held).
    assert "db_held_reads" not in app.wsgi.registry
    primary, replica = servers.primary.port, servers.replica.port
    author = app.api.register()
    wait_for(servers.caught_up, 30, "the new user on the replica")
    res, ports = app.served_by(lambda: app.api.get("/api/articles?limit=5"))
    assert res.status_code == 200
    assert ports == {replica}
    _, ports = app.served_by(lambda: app.api.get("/api/tags"))
    assert ports == {replica}
    # A write: every statement of the request on the primary (the replica
    # would refuse it anyway: it is read-only).
    res, ports = app.served_by(lambda: app.api.article(author["token"], tagList=["routing"]))
    assert ports == {primary}
    slug = res["slug"]
    wait_for(servers.caught_up, 30, "the article on the replica")
    # Others read it from the replica: anonymous, and a user who has not
    # written lately (the author's own marker has expired in this app).
    res, ports = app.served_by(lambda: app.api.get(f"/api/articles/{slug}"))
    assert res.json["article"]["tagList"] == ["routing"]
    assert ports == {replica}


def _statements_sent(app: App) -> float:
    text = app.api.app.get("/metrics").text
    found = re.search(r"^conduit_db_statements_total (\S+)$", text, re.MULTILINE)
    assert found, text
    return float(found.group(1))


def test_metrics_cover_the_replica(servers: Servers, app: App) -> None:
    """/metrics: each server's pool, and the statements sent to replicas."""
    app.api.get("/api/tags")
    before = _statements_sent(app)
    res, ports = app.served_by(lambda: app.api.get("/api/articles?limit=5"))
    assert res.status_code == 200 and ports == {servers.replica.port}
    assert _statements_sent(app) - before >= len(app.ports) > 0
    text = app.api.app.get("/metrics").text
    for server in ("primary", "replica-1"):
        assert f'conduit_db_pool_size{{server="{server}"}}' in text
        assert f'conduit_db_pool_checked_out{{server="{server}"}}' in text


def test_read_your_writes(servers: Servers, app: App) -> None:
    primary, replica = servers.primary.port, servers.replica.port
    author = app.api.register()
    wait_for(servers.caught_up, 30, "the user on the replica")
    servers.on_replica("SELECT pg_wal_replay_pause()")
    try:
        created, ports = app.served_by(lambda: app.api.article(author["token"]))
        assert ports == {primary}
        url = f"/api/articles/{created['slug']}"
        # The writer reads its write: from the primary, whatever the replica has.
        res, ports = app.served_by(lambda: app.api.get(url, author["token"]))
        assert res.status_code == 200 and ports == {primary}
        res, ports = app.served_by(lambda: app.api.get("/api/articles/feed", author["token"]))
        assert ports == {primary}
        # Someone else still reads from the (paused, so stale) replica: the
        # article is not there yet. This is what the marker spares the writer.
        res, ports = app.served_by(lambda: app.api.get(url, status=404))
        assert ports == {replica}
    finally:
        servers.on_replica("SELECT pg_wal_replay_resume()")
    wait_for(servers.caught_up, 30, "the replica to resume")
    res, ports = app.served_by(lambda: app.api.get(url))
    assert res.status_code == 200 and ports == {replica}


def test_a_new_user_reads_itself_at_once(servers: Servers, app: App) -> None:
    """Registration then the first authenticated request: the new row is found."""
    servers.on_replica("SELECT pg_wal_replay_pause()")
    try:
        user = app.api.register()
        res, ports = app.served_by(lambda: app.api.get("/api/user", user["token"]))
        assert res.json["user"]["username"] == user["username"]
        assert ports == {servers.primary.port}
    finally:
        servers.on_replica("SELECT pg_wal_replay_resume()")


def test_the_marker_expires(servers: Servers) -> None:
    app = App(servers, **{"db.primary_after_write": "1"})
    try:
        user = app.api.register()
        wait_for(servers.caught_up, 30, "the user on the replica")
        _, ports = app.served_by(lambda: app.api.get("/api/user", user["token"]))
        assert ports == {servers.primary.port}

        def back_on_replica() -> bool:
            return app.served_by(lambda: app.api.get("/api/user", user["token"]))[1] == {
                servers.replica.port
            }

        wait_for(back_on_replica, 10, "reads to return to the replica", every=0.2)
    finally:
        app.close()


def test_a_lagging_replica_is_not_used(servers: Servers) -> None:
    app = App(servers, **{"db.replica_max_lag": "0.5"})
    replica = app.router.replicas[0]
    try:
        app.router.check(replica)
        assert replica.usable
        servers.on_replica("SELECT pg_wal_replay_pause()")
        try:
            # A commit the replica receives but does not replay: it falls behind.
            app.api.register()

            def lagging() -> bool:
                app.router.check(replica)
                return not replica.usable

            wait_for(lagging, 10, "the replica to count as lagging", every=0.2)
            assert replica.lag is not None and replica.lag > 0.5
            res, ports = app.served_by(lambda: app.api.get("/api/articles"))
            assert res.status_code == 200 and ports == {servers.primary.port}
        finally:
            servers.on_replica("SELECT pg_wal_replay_resume()")
        wait_for(servers.caught_up, 30, "the replica to resume")

        def used_again() -> bool:
            return app.served_by(lambda: app.api.get("/api/articles"))[1] == {servers.replica.port}

        wait_for(used_again, 10, "the replica to be used again", every=0.2)
    finally:
        app.close()


def test_a_replica_that_is_down_falls_back_to_the_primary(servers: Servers, app: App) -> None:
    primary, replica_port = servers.primary.port, servers.replica.port
    _, ports = app.served_by(lambda: app.api.get("/api/articles"))
    assert ports == {replica_port}  # and the pool now holds a replica connection
    servers.replica.stop()
    try:
        # The pooled connection is dead: the request is replayed on the primary.
        for _ in range(3):
            res, ports = app.served_by(lambda: app.api.get("/api/articles"))
            assert res.status_code == 200
        assert ports == {primary}
        assert not app.router.replicas[0].usable
    finally:
        servers.replica.start()
    wait_for(servers.caught_up, 30, "the restarted replica to catch up")

    def used_again() -> bool:
        return app.served_by(lambda: app.api.get("/api/articles"))[1] == {replica_port}

    wait_for(used_again, 10, "the restarted replica to be used again", every=0.2)
