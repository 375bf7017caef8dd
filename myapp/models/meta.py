"""The declarative base, with a naming convention so that Alembic
migrations name constraints and indexes the same way on every database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData, String, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# 64-bit keys on Postgres (a million articles have a billion favourites'
# worth of headroom), but SQLite only auto-increments "INTEGER PRIMARY KEY".
BigId = BigInteger().with_variant(Integer(), "sqlite")


class TextArray(TypeDecorator[list[str]]):
    """``text[]``, read as psycopg2 hands it over: already a list of str.

    (ARRAY's own result processor walks every value again; a list page
    reads twenty of them.)
    """

    impl = ARRAY(Text())
    cache_ok = True

    def result_processor(self, dialect: Any, coltype: Any) -> None:
        return None


# A list of strings in one column: a ``text[]`` on Postgres, JSON text on SQLite.
StringList = JSON().with_variant(TextArray(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    Postgres stores ``timestamptz`` (read back in the session's TimeZone,
    converted here); SQLite stores naive text, so values read back from it
    are marked UTC again here rather than in every caller.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        # SQLite keeps the wall time and drops the offset: store UTC's.
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        # Postgres hands timestamptz back in the session's TimeZone: make it
        # UTC here, so every "...Z" the app prints really is UTC.
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class utc_text(FunctionElement[str]):
    """A timestamp column as UTC ISO 8601 text with microseconds, written by
    the database: ``2016-02-18T03:22:56.637123Z``.

    A list page prints forty timestamps. Read as datetimes, each costs the
    driver's parsing, :class:`UTCDateTime`'s conversion and Python's
    formatting (~4 us a row); as text, two slices (myapp.services.public).
    Postgres formats it in its own time zone-independent way (``AT TIME ZONE
    'UTC'``); SQLite already stores this text, with a space for the ``T``
    (SQLAlchemy writes every datetime with its six fraction digits).
    """

    type = String()
    name = "utc_text"
    inherit_cache = True


@compiles(utc_text, "postgresql")
def _utc_text_postgresql(element: utc_text, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


@compiles(utc_text, "sqlite")
def _utc_text_sqlite(element: utc_text, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    # (A value written without a fraction, by CURRENT_TIMESTAMP say, gets one.)
    padded = f"({column} || '.000000')"
    return f"substr({column}, 1, 10) || 'T' || substr({padded}, 12, 15) || 'Z'"


class Base(DeclarativeBase):
    metadata = metadata
