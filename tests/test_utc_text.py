"""models.meta.utc_text: the database writes a timestamp as the API prints it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select
from sqlalchemy.engine import Connection

from myapp.models.meta import UTCDateTime, utc_text
from myapp.services import paging

VALUES = [
    datetime(2016, 2, 18, 3, 22, 56, 637999, tzinfo=UTC),  # truncated, never rounded
    datetime(2026, 11, 26, 0, 0, 0, 0, tzinfo=UTC),  # no fraction at all
    # Stored from another zone: still printed in UTC (the previous day here).
    datetime(2024, 3, 1, 1, 30, 0, 5, tzinfo=timezone(timedelta(hours=5))),
]


def _roundtrip(conn: Connection) -> list[tuple[datetime, str]]:
    table = Table("stamps", MetaData(), Column("id", Integer, primary_key=True),
                  Column("at", UTCDateTime), prefixes=["TEMPORARY"])  # fmt: skip
    table.create(conn)
    conn.execute(insert(table), [{"id": i, "at": v} for i, v in enumerate(VALUES)])
    rows = conn.execute(select(table.c.at, utc_text(table.c.at)).order_by(table.c.id)).all()
    return [(at, text) for at, text in rows]


def _check(rows: list[tuple[datetime, str]]) -> None:
    for value, (read, text) in zip(VALUES, rows, strict=True):
        utc = value.astimezone(UTC)
        assert text == utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert read == utc
        # What the API prints, and the cursor made from it, to the microsecond.
        assert text[:23] + "Z" == utc.isoformat(timespec="milliseconds")[:23] + "Z"
        assert paging.cursor_of(text, 7) == paging.Cursor(utc, 7).encode()


def test_postgres_in_any_session_time_zone(connection: Connection) -> None:
    connection.exec_driver_sql("SET LOCAL TIME ZONE 'America/New_York'")
    _check(_roundtrip(connection))


def test_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'stamps.sqlite'}")
    with engine.begin() as conn:
        rows = _roundtrip(conn)
        # Written by something else than SQLAlchemy, without a fraction.
        conn.exec_driver_sql("INSERT INTO stamps (id, at) VALUES (9, '2026-01-02 03:04:05')")
        stamps = Table("stamps", MetaData(), autoload_with=conn)
        bare = conn.scalar(select(utc_text(stamps.c.at)).where(stamps.c.id == 9))
    engine.dispose()
    assert bare == "2026-01-02T03:04:05.000000Z"
    # SQLite keeps SQLAlchemy's text: the value with its six fraction digits.
    assert all(len(text) == len("2016-02-18T03:22:56.123456Z") for _, text in rows)
    _check(rows)
