"""Compose the application: settings first, then one ``include`` per concern.

Settings come from the ini file; environment variables override them, and
settings passed explicitly (tests) win over both, because we only *set
default* from the environment when the key was not given explicitly
(the shape of warehouse's ``maybe_set``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from pyramid.settings import asbool

from myapp.request import Configurator

# (setting key, environment variable, coercer)
ENVIRONMENT_SETTINGS: list[tuple[str, str, Callable[[str], Any]]] = [
    ("sqlalchemy.url", "DATABASE_URL", str),
    ("sqlalchemy.pool_size", "DB_POOL_SIZE", int),
    ("sqlalchemy.max_overflow", "DB_MAX_OVERFLOW", int),
    ("sqlalchemy.pool_timeout", "DB_POOL_TIMEOUT", float),
    ("sqlalchemy.pool_recycle", "DB_POOL_RECYCLE", int),
    ("sqlalchemy.pool_pre_ping", "DB_POOL_PRE_PING", asbool),
    ("db.statement_timeout_ms", "DB_STATEMENT_TIMEOUT_MS", int),
    # Read replicas, the connection budget, PgBouncer (myapp.db, docs/database.md).
    ("sqlalchemy.replica_urls", "DATABASE_REPLICA_URLS", str),
    ("db.replica_max_lag", "DB_REPLICA_MAX_LAG", float),
    ("db.replica_check_interval", "DB_REPLICA_CHECK_INTERVAL", float),
    ("db.primary_after_write", "DB_PRIMARY_AFTER_WRITE", float),
    ("db.expected_processes", "DB_EXPECTED_PROCESSES", int),
    ("db.connection_reserve", "DB_CONNECTION_RESERVE", int),
    ("db.connection_budget", "DB_CONNECTION_BUDGET", str),
    ("db.pgbouncer", "DB_PGBOUNCER", asbool),
    ("db.autocommit_reads", "DB_AUTOCOMMIT_READS", asbool),
    ("db.prepared_statements", "DB_PREPARED_STATEMENTS", asbool),
    ("db.read_connection_max_age", "DB_READ_CONNECTION_MAX_AGE", float),
    ("db.pgbouncer_max_client_conn", "DB_PGBOUNCER_MAX_CLIENT_CONN", int),
    ("redis.url", "REDIS_URL", str),
    ("server.replica_name", "REPLICA_NAME", str),
    ("cache.enabled", "CACHE_ENABLED", asbool),
    ("cache.prefix", "CACHE_PREFIX", str),
    ("auth.secret", "SECRET_KEY", str),
    ("auth.token_ttl_seconds", "TOKEN_TTL_SECONDS", int),
    ("api.max_body_bytes", "MAX_BODY_BYTES", int),
    # Background jobs (myapp.tasks): no broker means the in-process runner.
    ("celery.broker_url", "CELERY_BROKER_URL", str),
    ("celery.queue", "CELERY_QUEUE", str),
    ("jobs.exports_dir", "EXPORTS_DIR", str),
    ("mail.smtp_host", "SMTP_HOST", str),
    ("mail.smtp_port", "SMTP_PORT", int),
    ("mail.outbox", "MAIL_OUTBOX", str),
    ("mail.site_url", "SITE_URL", str),
]


def settings_from_environment(
    settings: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Return a copy of ``settings`` with environment overrides applied.

    An environment variable replaces the ini value; a key that the caller
    marks as explicit (``_explicit``) is never replaced, so tests can pin a
    value whatever the environment says.
    """
    environ = os.environ if environ is None else environ
    result = dict(settings)
    explicit = set(result.pop("_explicit", ()))
    for key, env_name, coerce in ENVIRONMENT_SETTINGS:
        if key not in explicit and environ.get(env_name):
            result[key] = coerce(environ[env_name])
    return result


def configure(settings: Mapping[str, Any]) -> Configurator:
    settings = settings_from_environment(settings)
    config = Configurator(settings=settings, root_factory="myapp.resources.Root")

    # Operations first: request ids and the replica's name on every
    # response, metrics for every request, health checks for balancers.
    config.include("myapp.requestid")
    config.include("myapp.metrics")
    config.include("myapp.health")
    # Transactions: every later concern joins the request's transaction
    # (pyramid_tm), and a retryable error replays the whole request
    # (pyramid_retry) — see myapp.db for which errors count as retryable.
    config.include("pyramid_tm")
    config.include("pyramid_retry")
    # The database engine, the pool, and request.dbsession.
    config.include("myapp.db")
    # The cache regions, purged after commit (after myapp.db: it watches
    # the session factory), then HTTP caching of GET responses.
    config.include("myapp.cache")
    config.include("myapp.services.public")
    config.include("myapp.httpcache")
    # Who is calling: JWT tokens for the API, argon2 password hashes.
    config.include("myapp.security")
    # Background jobs: request.dispatch sends them after commit, to Celery
    # (celery.broker_url) or to an in-process thread; the jobs are in
    # myapp.jobs (scanned below).
    config.include("myapp.tasks")
    # The pages' session (Redis with redis.url, else a signed cookie) and
    # CSRF checks on every unsafe request outside /api.
    config.include("myapp.sessions")
    # JSON responses, encoded by orjson.
    config.include("myapp.renderers")
    # Templates for the HTML pages and the API explorer.
    config.include("pyramid_jinja2")
    # The RealWorld JSON API under /api (routes, validation, error format).
    config.include("myapp.api", route_prefix="/api")
    # The API explorer (Swagger UI) and the spec itself, at /api/docs.
    config.include("myapp.explorer")
    # The browsable web app: server-rendered pages, /static, error pages.
    config.include("myapp.pages")

    # Decorators only take effect here, so importing a module never
    # registers anything by itself.
    config.scan("myapp.api")
    config.scan("myapp.health")
    config.scan("myapp.metrics")
    config.scan("myapp.explorer")
    config.scan("myapp.pages")
    config.scan("myapp.jobs")
    return config
