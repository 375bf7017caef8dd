"""Wait, for a bounded time, until what a role needs answers.

Compose engines differ in what ``depends_on`` means (podman-compose ignores
healthchecks; Swarm ignores depends_on altogether), so every container
waits for its own dependencies before it starts:

* Postgres accepts a query (not just a TCP connection: during initdb and
  recovery it accepts connections and refuses them);
* Redis (``REDIS_URL``) and a Redis broker (``CELERY_BROKER_URL``) answer PING,
  another broker (amqp://) accepts a TCP connection;
* with ``--migrated``, the schema is at Alembic's head, so that web
  replicas and workers never serve a half-migrated database.

Settings are read like the app reads them (the ini file, then the
environment). Exits 1 after ``WAIT_TIMEOUT`` seconds (default 120).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import redis
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pyramid.paster import get_appsettings
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from myapp.config import settings_from_environment
from myapp.db import normalize_url
from myapp.scripts.migrate import alembic_config


def wait(name: str, check: Callable[[], None], deadline: float) -> None:
    last = ""
    while True:
        try:
            check()
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
            if reason != last:
                print(f"waiting for {name}: {reason}", file=sys.stderr, flush=True)
                last = reason
        else:
            print(f"{name}: ready", file=sys.stderr, flush=True)
            return
        if time.monotonic() > deadline:
            sys.exit(f"gave up waiting for {name}")
        time.sleep(1)


def ping_broker(url: str) -> None:
    if url.startswith(("redis://", "rediss://")):
        redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2).ping()
        return
    parts = urlsplit(url)
    socket.create_connection((parts.hostname or "localhost", parts.port or 5672), 2).close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("ini", help="the app's ini file (production.ini)")
    parser.add_argument("--migrated", action="store_true", help="also wait for Alembic's head")
    args = parser.parse_args()
    deadline = time.monotonic() + float(os.environ.get("WAIT_TIMEOUT", 120))
    settings = settings_from_environment(get_appsettings(args.ini))

    engine = create_engine(
        normalize_url(settings.get("sqlalchemy.url")),
        poolclass=NullPool,
        connect_args={"connect_timeout": 3},
    )

    def database() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    wait("postgres", database, deadline)
    if settings.get("redis.url"):
        wait("redis", lambda: ping_broker(settings["redis.url"]), deadline)
    if os.environ.get("CELERY_BROKER_URL"):
        wait("broker", lambda: ping_broker(os.environ["CELERY_BROKER_URL"]), deadline)

    if args.migrated:
        heads = set(ScriptDirectory.from_config(alembic_config(args.ini)).get_heads())

        def migrated() -> None:
            with engine.connect() as conn:
                current = set(MigrationContext.configure(conn).get_current_heads())
            if current != heads:
                found = sorted(current) or "nothing"
                raise RuntimeError(f"schema at {found}, head is {sorted(heads)}")

        wait("migrations", migrated, deadline)
    engine.dispose()


if __name__ == "__main__":
    main()
