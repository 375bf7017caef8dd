"""The app through PgBouncer in transaction pooling, with the settings that make it safe.

A PgBouncer of the test's own (Debian's package, run as ``postgres``) on a
free loopback port, in front of the test server, with a server pool of 2.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import webtest
from sqlalchemy import create_engine, make_url, pool, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from myapp.config import configure
from myapp.db import get_engine
from tests.conftest import Api, base_settings, migrated_database
from tests.pg import free_port, wait_for

pytestmark = [
    pytest.mark.skipif(
        shutil.which("pgbouncer") is None,
        reason="PgBouncer not installed (apt-get install pgbouncer)",
    ),
    pytest.mark.xdist_group("pgbouncer"),
]
SERVER_POOL = 2


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    yield from migrated_database("conduit_test_pgbouncer")


@pytest.fixture(scope="module")
def bouncer(database: str) -> Iterator[str]:
    """PgBouncer in front of ``database``; yields the URL through it."""
    target = make_url(database)
    folder = Path(tempfile.mkdtemp(prefix="conduit-pgbouncer-"))
    port = free_port(6641, 6659)
    (folder / "userlist.txt").write_text(f'"{target.username}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        f"[databases]\n{target.database} = host={target.host} port={target.port or 5432}\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'userlist.txt'}\n"
        f"pool_mode = transaction\ndefault_pool_size = {SERVER_POOL}\nmax_client_conn = 100\n"
    )
    folder.chmod(0o755)
    user = ["-u", "postgres"] if os.geteuid() == 0 else []
    process = subprocess.Popen(
        ["pgbouncer", *user, str(folder / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        bounced = target.set(host="127.0.0.1", port=port)

        def answers() -> bool:
            engine = create_engine(bounced, poolclass=pool.NullPool)
            try:
                with engine.connect() as conn:
                    return conn.execute(text("SELECT 1")).scalar() == 1
            except OperationalError:
                return False
            finally:
                engine.dispose()

        wait_for(answers, 15, "PgBouncer to answer")
        yield bounced.render_as_string(hide_password=False)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        shutil.rmtree(folder, ignore_errors=True)


def settings(url: str, **extra: str) -> dict[str, str]:
    values = base_settings(url) | {
        "db.pgbouncer": "true",
        "db.statement_timeout_ms": "300",
        "sqlalchemy.pool_size": "6",
        "jobs.runner": "inline",
    }
    values |= extra
    values["_explicit"] = list(values)  # type: ignore[assignment]
    return values


def test_startup_options_are_refused_by_pgbouncer(bouncer: str) -> None:
    """Why ``db.pgbouncer`` exists: the usual timeout option cannot get through."""
    engine = get_engine({"sqlalchemy.url": bouncer, "db.statement_timeout_ms": "300"})
    try:
        with pytest.raises(OperationalError, match="unsupported startup parameter: options"):
            engine.connect()
    finally:
        engine.dispose()


def test_the_statement_timeout_holds_in_every_transaction(bouncer: str) -> None:
    engine = get_engine(settings(bouncer))
    try:
        for _ in range(3):  # whichever server connection serves the transaction
            with engine.connect() as conn:
                assert conn.execute(text("SHOW statement_timeout")).scalar() == "300ms"
                with pytest.raises(OperationalError, match="statement timeout"):
                    conn.execute(text("SELECT pg_sleep(2)"))
    finally:
        engine.dispose()


def server_connections(admin: Engine, database: str) -> int:
    with admin.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = :d AND pid <> pg_backend_pid()"
                ),
                {"d": database},
            ).scalar_one()
        )


def test_the_app_works_and_many_clients_share_few_servers(bouncer: str, database: str) -> None:
    wsgi = configure(settings(bouncer)).make_wsgi_app()
    admin = create_engine(database, poolclass=pool.NullPool)
    try:
        api = Api(webtest.TestApp(wsgi, extra_environ={"HTTP_HOST": "localhost"}))
        user = api.register()
        for i in range(3):
            api.article(user["token"], tagList=["bounced"], title=f"Bounced {i}")
        assert api.get("/api/articles?tag=bounced").json["articlesCount"] == 3
        # Six sessions at once, each in a transaction, through two server connections.
        engine: Engine = wsgi.registry["db_engine"]
        name = str(make_url(database).database)
        peak = 0

        def hold(_: int) -> None:
            with engine.connect() as conn:
                conn.execute(text("SELECT pg_sleep(0.05)"))

        with ThreadPoolExecutor(6) as pool_:
            futures = [pool_.submit(hold, i) for i in range(30)]
            while not all(f.done() for f in futures):
                peak = max(peak, server_connections(admin, name))
                time.sleep(0.01)
            for future in futures:
                future.result()
        assert engine.pool.checkedin() >= 3  # the app really had several connections
        assert 0 < peak <= SERVER_POOL
    finally:
        wsgi.registry["db_engine"].dispose()
        admin.dispose()
