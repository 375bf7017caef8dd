"""``myapp-seed INI --articles N``: a large, deterministic data set, fast.

Fills a migrated Postgres database with N articles and the users, follows,
tags, favourites and comments that go with them (shapes and ratios in
myapp.scripts.seed_data). The same N and ``--seed`` always give the same
rows, so benchmarks at 10k and 1M articles compare like with like.

How it is fast (the recipe of Postgres' "Populating a Database" chapter):

* rows are generated in Python and streamed with ``COPY ... FROM STDIN``
  (psycopg2 ``copy_expert``), never INSERTed one by one;
* everything happens in ONE transaction that first drops the secondary
  indexes and foreign keys of the seeded tables (their definitions read
  from the catalog), disables their triggers (the list counters of
  myapp.services.counts), loads, then builds the indexes in one pass each
  and re-adds the foreign keys (validated by one join each). DDL is
  transactional in Postgres: if anything fails, the rollback restores the
  schema exactly as it was, and no half-seeded data remains;
* afterwards: sequences moved past the loaded ids, ``favorites_count``
  checked against the ``favorites`` rows (and corrected, reported), the
  list counters recounted, and ``VACUUM (ANALYZE)`` so the planner has
  statistics and index-only scans have a visibility map (autovacuum may
  be off, as on the CI machine).

A database that already has data is refused. ``--force`` empties the
app's tables first (``TRUNCATE ... RESTART IDENTITY CASCADE``: every user,
article, tag, comment, favourite and follow is deleted, and with them the
rows that reference them, such as jobs and notifications) and then seeds
from scratch: the result is the same data set whatever was there. It never
appends: appended seed rows would collide with existing names and ids.

Every seeded user's password is ``conduit-seed`` (seed_data.PASSWORD);
``seed_data.username(i)`` / ``email(i)`` name user i.

While it runs, the seeded tables are locked: seed a database that no
running app uses yet.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import plaster
from argon2.low_level import hash_secret
from sqlalchemy import create_engine, make_url, pool, text
from sqlalchemy.engine import Connection

from myapp.config import settings_from_environment
from myapp.db import normalize_url
from myapp.scripts import migrate
from myapp.scripts import seed_data as data
from myapp.security import Passwords
from myapp.services import counts

# In load order, with the columns each generator writes.
TABLES: dict[str, str] = {
    "users": "id, username, email, password_hash, bio, image, created_at, updated_at",
    "tags": "id, name",
    "articles": (
        "id, slug, title, description, body, author_id, favorites_count, created_at, updated_at, "
        "tag_names"
    ),
    "follows": "follower_id, followed_id, created_at",
    "article_tags": "article_id, tag_id, position, created_at",
    "favorites": "user_id, article_id, created_at",
    "comments": "id, article_id, author_id, body, created_at, updated_at",
}
SERIAL_TABLES = ("users", "tags", "articles", "comments")
# Emptied by --force (and the counters derived from them).
TRUNCATED = (*TABLES, counts.TABLE)

Log = Callable[[str], None]


class SeedError(Exception):
    """The seeder cannot go on (a database with data, not Postgres, ...)."""


@dataclass
class Report:
    articles: int
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    favorites_fixed: int = 0

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


class _Timer:
    def __init__(self, report: Report, log: Log):
        self.report = report
        self.log = log

    def __call__(self, step: str) -> _Step:
        return _Step(self, step)


class _Step:
    def __init__(self, timer: _Timer, name: str):
        self.timer = timer
        self.name = name

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        elapsed = time.perf_counter() - self.start
        self.timer.report.seconds[self.name] = elapsed
        rows = self.timer.report.rows.get(self.name)
        extra = f" ({rows:,} rows)" if rows is not None else ""
        self.timer.log(f"{self.name}: {elapsed:.1f}s{extra}")


def existing_rows(conn: Connection) -> dict[str, bool]:
    """Which of the seeded tables have at least one row."""
    return {
        table: bool(conn.scalar(text(f"SELECT EXISTS (SELECT 1 FROM {table})"))) for table in TABLES
    }


def _deferred_ddl(conn: Connection) -> tuple[list[str], list[tuple[str, str]]]:
    """(secondary index definitions, (table, foreign key) pairs) of the seeded tables."""
    names = list(TABLES)
    indexes = conn.scalars(
        text(
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "JOIN pg_class t ON t.oid = i.indrelid "
            "WHERE t.relname = ANY(:names) AND t.relnamespace = 'public'::regnamespace "
            "AND NOT i.indisprimary AND NOT i.indisunique "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"
        ),
        {"names": names},
    ).all()
    foreign_keys = conn.execute(
        text(
            "SELECT t.relname, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c "
            "JOIN pg_class t ON t.oid = c.conrelid "
            "WHERE c.contype = 'f' AND t.relname = ANY(:names) "
            "AND t.relnamespace = 'public'::regnamespace"
        ),
        {"names": names},
    ).all()
    return list(indexes), [(t, f'CONSTRAINT "{n}" {d}') for t, n, d in foreign_keys]


def _index_name(definition: str) -> str:
    # "CREATE INDEX ix_name ON public.table USING btree (...)"
    return definition.split()[2]


def _generators(plan: data.Plan, password_hash: str) -> dict[str, Iterator[str]]:
    return {
        "users": data.users(plan, password_hash),
        "tags": data.tags(plan),
        "articles": data.articles(plan),
        "follows": data.follows(plan),
        "article_tags": data.article_tags(plan),
        "favorites": data.favorites(plan),
        "comments": data.comments(plan),
    }


def _password_hash(seed: int) -> str:
    """One argon2 hash for every seeded user (argon2 is deliberately slow).

    The app's own parameters (myapp.security.Passwords' defaults, so no
    rehash on login), with a salt derived from the seed instead of a random
    one: the same arguments give the same rows, hashes included.
    """
    hasher = Passwords().hasher
    salt = hashlib.sha256(f"conduit-seed-{seed}".encode()).digest()[: hasher.salt_len]
    return hash_secret(
        data.PASSWORD.encode(),
        salt,
        time_cost=hasher.time_cost,
        memory_cost=hasher.memory_cost,
        parallelism=hasher.parallelism,
        hash_len=hasher.hash_len,
        type=hasher.type,
    ).decode()


def _copy(conn: Connection, table: str, lines: Iterator[str]) -> int:
    stream = data.Stream(lines)
    cursor: Any = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.copy_expert(f"COPY {table} ({TABLES[table]}) FROM STDIN", stream, size=1 << 16)
    finally:
        cursor.close()
    return stream.rows


def _fix_favorites_count(conn: Connection) -> int:
    """Set ``favorites_count`` from the rows wherever they disagree; how many were wrong."""
    result = conn.execute(
        text(
            "UPDATE articles a SET favorites_count = c.n FROM ("
            " SELECT a2.id, count(f.article_id) AS n FROM articles a2"
            " LEFT JOIN favorites f ON f.article_id = a2.id GROUP BY a2.id"
            ") c WHERE c.id = a.id AND a.favorites_count <> c.n"
        )
    )
    return int(result.rowcount or 0)


def _load(conn: Connection, plan: data.Plan, force: bool, step: _Timer, report: Report) -> None:
    found = [table for table, has in existing_rows(conn).items() if has]
    if found and not force:
        raise SeedError(
            f"the database already has data (in {', '.join(found)}); "
            "use --force to delete ALL of it and seed from scratch"
        )
    if found:
        with step("truncate"):
            conn.execute(text(f"TRUNCATE {', '.join(TRUNCATED)} RESTART IDENTITY CASCADE"))
    indexes, foreign_keys = _deferred_ddl(conn)
    with step("drop indexes and foreign keys"):
        for table, constraint in foreign_keys:
            name = constraint.split('"')[1]
            conn.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
        for definition in indexes:
            conn.execute(text(f"DROP INDEX {_index_name(definition)}"))
        for table in TABLES:
            conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
    password_hash = _password_hash(plan.seed)
    for table, lines in _generators(plan, password_hash).items():
        with step(table):
            report.rows[table] = _copy(conn, table, lines)
    with step("indexes and foreign keys"):
        conn.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
        for definition in indexes:
            conn.execute(text(definition))
        for table, constraint in foreign_keys:
            conn.execute(text(f"ALTER TABLE {table} ADD {constraint}"))
        for table in TABLES:
            conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
    with step("sequences, favorites_count, counters"):
        for table in SERIAL_TABLES:
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"COALESCE(max(id), 0) + 1, false) FROM {table}"
                )
            )
        report.favorites_fixed = _fix_favorites_count(conn)
        counts.recount(conn)


def seed(url: str, articles: int, seed: int = 42, force: bool = False, log: Log = print) -> Report:
    """Seed the (migrated) database at ``url``; see the module docs."""
    url = normalize_url(url)
    if make_url(url).get_backend_name() != "postgresql":
        raise SeedError("the seeder needs Postgres (it loads with COPY)")
    if articles < 1:
        raise SeedError("--articles must be at least 1")
    plan = data.Plan(articles=articles, seed=seed)
    report = Report(articles=articles)
    step = _Timer(report, log)
    log(
        f"seeding {articles:,} articles, {plan.users:,} users, {plan.tags} tags "
        f"(seed {seed}) into {make_url(url).render_as_string(hide_password=True)}"
    )
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn, conn.begin():
            # No statement timeout for a bulk load; the lock timeout keeps us
            # from queueing forever behind someone else's transaction.
            conn.execute(text("SET LOCAL statement_timeout = 0"))
            conn.execute(text("SET LOCAL lock_timeout = '10s'"))
            _load(conn, plan, force, step, report)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("SET statement_timeout = 0"))
            with step("vacuum analyze"):
                for table in (*TABLES, counts.TABLE):
                    conn.execute(text(f"VACUUM (ANALYZE) {table}"))
    finally:
        engine.dispose()
    log(f"done in {report.total_seconds:.1f}s; favorites_count corrected: {report.favorites_fixed}")
    return report


def database_url(config_uri: str, url: str | None) -> str:
    if url:
        return url
    settings = settings_from_environment(dict(plaster.get_settings(config_uri, "app:main")))
    return str(settings.get("sqlalchemy.url") or "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Fill a Postgres database with a large, deterministic Conduit data set.",
        epilog="Every seeded user's password is 'conduit-seed'.",
    )
    parser.add_argument("config_uri", help="the ini file (its database, or DATABASE_URL)")
    parser.add_argument("--articles", type=int, required=True, help="how many articles")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--url", help="the database URL (default: the ini's / DATABASE_URL)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="the database has data: DELETE ALL of it (TRUNCATE ... CASCADE), then seed",
    )
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    url = normalize_url(database_url(args.config_uri, args.url))
    try:
        if make_url(url).get_backend_name() != "postgresql":
            raise SeedError("the seeder needs Postgres (it loads with COPY)")
        migrate.upgrade(args.config_uri, url)
        seed(url, args.articles, seed=args.seed, force=args.force)
    except SeedError as exc:
        print(f"myapp-seed: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
