"""The connection budget, checked at startup.

Every process (gunicorn worker, Celery worker process) has its own pool of
up to ``pool_size + max_overflow`` connections to each server it uses, so a
deployment can open

    expected_processes x (pool_size + max_overflow)

connections to the primary (and as many to each read replica), where
``expected_processes`` = replicas x workers per replica (+ worker processes
of anything else using the same settings). That must fit in

    max_connections - superuser_reserved_connections
                    - reserved_connections (Postgres 16+) - db.connection_reserve

(``db.connection_reserve``, default 5: migrations, psql, monitoring, the
health checks of a deploy in progress). Postgres refuses the connection
beyond that ("too many clients already"): under peak load, the worst time
to find out. So when the settings say how many processes to expect
(``db.expected_processes``, env DB_EXPECTED_PROCESSES), the app asks each
server for its limits at startup and **refuses to start** when the pools
could exceed them: a deploy that fails at once, with the arithmetic in the
message, is cheaper than one that fails at the first traffic peak. Set
``db.connection_budget = warn`` to only log the error instead (e.g. while
resizing). A server that cannot be reached at startup is not checked (the
app must start and answer 503 until the database is back); that is logged.

Behind PgBouncer (``db.pgbouncer = true``) the app's connections are
PgBouncer clients: the pools must fit in PgBouncer's ``max_client_conn``
(``db.pgbouncer_max_client_conn``, default 100, the PgBouncer default),
and PgBouncer's own ``default_pool_size`` is what must fit in Postgres'
``max_connections`` (cluster/up.sh sizes it so).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyramid.exceptions import ConfigurationError
from pyramid.settings import asbool
from sqlalchemy import create_engine, make_url, pool, text

log = logging.getLogger(__name__)

# SQLAlchemy's QueuePool defaults, when the settings leave them out.
DEFAULT_POOL_SIZE = 5
DEFAULT_MAX_OVERFLOW = 10
DEFAULT_RESERVE = 5
DEFAULT_PGBOUNCER_MAX_CLIENT_CONN = 100

LIMITS_QUERY = text(
    "SELECT current_setting('max_connections')::int, "
    "current_setting('superuser_reserved_connections')::int, "
    "COALESCE(current_setting('reserved_connections', true), '0')::int"
)


@dataclass(frozen=True)
class Budget:
    processes: int
    per_process: int
    limit: int
    server: str
    detail: str

    @property
    def needed(self) -> int:
        return self.processes * self.per_process

    @property
    def ok(self) -> bool:
        return self.needed <= self.limit

    def describe(self) -> str:
        return (
            f"{self.server}: {self.processes} processes x {self.per_process} connections "
            f"(pool_size + max_overflow) = {self.needed}, limit {self.limit} ({self.detail})"
        )


def per_process(settings: Mapping[str, Any], prefix: str = "sqlalchemy.") -> int:
    size = settings.get(prefix + "pool_size")
    overflow = settings.get(prefix + "max_overflow")
    size = DEFAULT_POOL_SIZE if size in (None, "") else int(size)
    overflow = DEFAULT_MAX_OVERFLOW if overflow in (None, "") else int(overflow)
    return size + max(overflow, 0)


def server_limit(url: str, reserve: int, connect_timeout: int = 3) -> tuple[int, str]:
    """What this deployment may use of the server at ``url``, and how that was computed."""
    engine = create_engine(
        url, poolclass=pool.NullPool, connect_args={"connect_timeout": connect_timeout}
    )
    try:
        with engine.connect() as conn:
            max_connections, superuser, reserved = conn.execute(LIMITS_QUERY).one()
    finally:
        engine.dispose()
    limit = max_connections - superuser - reserved - reserve
    detail = (
        f"max_connections {max_connections} - superuser_reserved {superuser} "
        f"- reserved {reserved} - db.connection_reserve {reserve}"
    )
    return limit, detail


def budgets(settings: Mapping[str, Any], urls: list[str]) -> list[Budget]:
    """The budget of each server in ``urls`` (primary first); unreachable ones are skipped."""
    processes = int(settings["db.expected_processes"])
    each = per_process(settings)
    if asbool(settings.get("db.pgbouncer", False)):
        limit = int(
            settings.get("db.pgbouncer_max_client_conn") or DEFAULT_PGBOUNCER_MAX_CLIENT_CONN
        )
        return [Budget(processes, each, limit, "pgbouncer", "db.pgbouncer_max_client_conn")]
    reserve = int(settings.get("db.connection_reserve", DEFAULT_RESERVE))
    result = []
    for url in urls:
        if make_url(url).get_backend_name() != "postgresql":
            continue
        name = make_url(url).render_as_string(hide_password=True)
        try:
            limit, detail = server_limit(url, reserve)
        except Exception as exc:
            log.warning("connection budget of %s not checked (unreachable): %s", name, exc)
            continue
        result.append(Budget(processes, each, limit, name, detail))
    return result


def enforce(settings: Mapping[str, Any], urls: list[str]) -> list[Budget]:
    """Check the budget when ``db.expected_processes`` is set; raise unless ``warn``."""
    if not str(settings.get("db.expected_processes") or "").strip():
        return []
    checked = budgets(settings, urls)
    over = [b for b in checked if not b.ok]
    for budget in checked:
        if budget.ok:
            log.info("connection budget ok: %s", budget.describe())
    if over:
        message = "connection budget exceeded: " + "; ".join(b.describe() for b in over)
        if str(settings.get("db.connection_budget", "enforce")).lower() == "warn":
            log.error(message)
        else:
            remedy = (
                "raise PgBouncer's max_client_conn (and db.pgbouncer_max_client_conn)"
                if asbool(settings.get("db.pgbouncer", False))
                else "raise max_connections, or put PgBouncer in front"
            )
            raise ConfigurationError(
                f"{message}. Lower DB_POOL_SIZE/DB_MAX_OVERFLOW or the process count, "
                f"{remedy} (docs/database.md)."
            )
    return checked
