"""Health checks for load balancers and orchestrators.

* ``/healthz`` — the process answers; touches nothing else (liveness: a
  failing database must not get healthy replicas restarted).
* ``/readyz`` — Postgres and (when configured) Redis answer within a short
  timeout; 503 otherwise, so the balancer stops sending traffic here.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.view import view_config
from sqlalchemy import text

log = logging.getLogger(__name__)


def _no_store(request: Request) -> None:
    request.response.cache_control.no_store = True


@view_config(route_name="healthz", renderer="json")
def healthz(request: Request) -> dict[str, Any]:
    _no_store(request)
    return {"status": "ok"}


def check_database(request: Request) -> str | None:
    try:
        with request.registry["db_engine"].connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return None


def check_redis(request: Request) -> str | None:
    url = request.registry.settings.get("redis.url")
    if not url:
        return None
    try:
        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@view_config(route_name="readyz", renderer="json")
def readyz(request: Request) -> dict[str, Any]:
    _no_store(request)
    checks = {"database": check_database(request), "redis": check_redis(request)}
    failed = {name: error for name, error in checks.items() if error}
    if failed:
        log.warning("not ready: %s", failed)
        request.response.status = 503
    report = {name: (error or "ok") for name, error in checks.items()}
    if not request.registry.settings.get("redis.url"):
        report["redis"] = "not configured"
    return {"status": "unavailable" if failed else "ok", "checks": report}


def includeme(config: Configurator) -> None:
    config.add_route("healthz", "/healthz")
    config.add_route("readyz", "/readyz")
