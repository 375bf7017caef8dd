"""Alembic: the migrations build exactly the models' schema, undo cleanly,
and several replicas may run ``upgrade head`` at the same time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, pool, text
from sqlalchemy.engine import Connection

from myapp.models import metadata
from myapp.scripts import migrate
from tests.conftest import ROOT, create_database, drop_database

INI = str(ROOT / "development.ini")
ADVISORY_LOCK_ID = 7_303_212_009_186_341  # alembic/env.py's
ENV_LOCK_TIMEOUT = 10  # seconds, alembic/env.py's lock_timeout


@pytest.fixture
def empty_database() -> Iterator[str]:
    url = create_database()
    try:
        yield url
    finally:
        drop_database(url)


def schema_differences(url: str) -> list[object]:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def tables(url: str) -> set[str]:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_gives_the_models_schema_and_downgrade_removes_it(empty_database: str) -> None:
    migrate.upgrade(INI, empty_database)
    assert tables(empty_database) == set(metadata.tables) | {"alembic_version"}
    assert schema_differences(empty_database) == []
    # Upgrading an up-to-date database does nothing, and fails nothing.
    migrate.upgrade(INI, empty_database)
    migrate.downgrade(INI, empty_database)
    assert tables(empty_database) == {"alembic_version"}
    # And back up again: downgrade really undid everything.
    migrate.upgrade(INI, empty_database)
    assert schema_differences(empty_database) == []


def test_the_empty_database_differs_from_the_models(empty_database: str) -> None:
    """The comparison above can fail: an unmigrated database is all differences."""
    assert len(schema_differences(empty_database)) >= len(metadata.tables)


def _waiting_for_the_lock(conn: Connection, database: str) -> int:
    return conn.execute(
        text(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = :db"
        ),
        {"db": database},
    ).scalar_one()


def test_concurrent_upgrades_take_turns(empty_database: str) -> None:
    """Two ``alembic upgrade head`` processes at once, as two replicas would.

    The test holds the migration lock until both processes are waiting for
    it, so both are certainly inside env.py at the same time, and then a
    while longer than env.py's ``lock_timeout`` (as a long migration run by
    another replica would): waiting replicas must keep waiting, not crash.
    Then it lets them race.
    """
    database = empty_database.rsplit("/", 1)[1]
    env = os.environ | {"DATABASE_URL": empty_database}
    alembic = str(Path(sys.executable).with_name("alembic"))
    engine = create_engine(empty_database, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with engine.connect() as holder:
            holder.execute(text("SELECT pg_advisory_lock(:id)"), {"id": ADVISORY_LOCK_ID})
            processes = [
                subprocess.Popen(
                    [alembic, "-c", INI, "upgrade", "head"],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                )
                for _ in range(2)
            ]
            deadline = time.monotonic() + 60
            while _waiting_for_the_lock(holder, database) < 2:
                assert all(p.poll() is None for p in processes), "a migration did not wait"
                assert time.monotonic() < deadline, "the migrations never reached the lock"
                time.sleep(0.05)
            time.sleep(ENV_LOCK_TIMEOUT + 1)
            assert _waiting_for_the_lock(holder, database) == 2
            holder.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": ADVISORY_LOCK_ID})
        outputs = [p.communicate(timeout=120)[0].decode() for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
        engine.dispose()
    for p, output in zip(processes, outputs, strict=True):
        assert p.returncode == 0, output
    # Exactly one of them ran the initial revision; the other found nothing to do.
    assert sum("Running upgrade  -> 0001" in output for output in outputs) == 1, outputs
    assert schema_differences(empty_database) == []
