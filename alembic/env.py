"""Alembic environment, safe for N replicas migrating at once.

* The URL is the app's: the ini file's settings with environment overrides
  (DATABASE_URL), unless a caller passes ``config.attributes["url"]``.
* NullPool: a migration holds one connection and gives it back.
* On Postgres, ``lock_timeout``/``statement_timeout`` keep a migration from
  queueing behind live traffic forever, and a session advisory lock makes
  concurrent ``upgrade head`` runs (every replica's entrypoint) take turns:
  the first migrates, the others find nothing left to do.
"""

from __future__ import annotations

import logging
from logging.config import fileConfig

import plaster
from sqlalchemy import create_engine, pool, text

from alembic import context
from myapp.config import settings_from_environment
from myapp.db import normalize_url
from myapp.models import metadata

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
log = logging.getLogger("alembic.env")

# hashtext('conduit-alembic') would need a round trip; any fixed bigint works.
ADVISORY_LOCK_ID = 7_303_212_009_186_341


def database_url() -> str:
    url = config.attributes.get("url")
    if url:
        return normalize_url(str(url))
    settings: dict[str, str] = {}
    if config.config_file_name:
        settings = dict(plaster.get_settings(config.config_file_name, "app:main"))
    return normalize_url(settings_from_environment(settings).get("sqlalchemy.url"))


def run_offline() -> None:
    context.configure(url=database_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    is_postgres = engine.dialect.name == "postgresql"
    with engine.connect() as connection:
        if is_postgres:
            # The advisory lock first: lock_timeout applies to advisory locks
            # too, so taken after it a replica would give up (and crash) when
            # another replica's migration runs longer than 10s.
            connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": ADVISORY_LOCK_ID})
            connection.execute(text("SET lock_timeout = '10s'"))
            connection.execute(text("SET statement_timeout = '300s'"))
            connection.commit()
        try:
            context.configure(
                connection=connection,
                target_metadata=metadata,
                compare_type=True,
                render_as_batch=engine.dialect.name == "sqlite",
            )
            with context.begin_transaction():
                context.run_migrations()
        finally:
            if is_postgres:
                connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": ADVISORY_LOCK_ID})
                connection.commit()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
