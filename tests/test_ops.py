"""Operations: health checks, request ids, the replica's name, metrics."""

from __future__ import annotations

import socket
from typing import Any

import webtest
from prometheus_client import REGISTRY

from myapp.cache import RegionStats
from myapp.config import configure
from myapp.metrics import _CacheDeltas
from tests.conftest import Api


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_healthz_needs_nothing(app_settings: dict[str, Any]) -> None:
    port = _closed_port()
    settings = app_settings | {"sqlalchemy.url": f"postgresql://postgres@127.0.0.1:{port}/x"}
    app = webtest.TestApp(configure(settings).make_wsgi_app())
    assert app.get("/healthz").json == {"status": "ok"}
    ready = app.get("/readyz", status=503).json
    assert ready["status"] == "unavailable"
    assert ready["checks"]["database"] != "ok"


def test_readyz_checks_database_and_redis(app_settings: dict[str, Any]) -> None:
    app = webtest.TestApp(configure(app_settings).make_wsgi_app())
    ready = app.get("/readyz").json
    assert ready == {"status": "ok", "checks": {"database": "ok", "redis": "not configured"}}
    settings = app_settings | {"redis.url": "redis://127.0.0.1:6379/0"}
    app = webtest.TestApp(configure(settings).make_wsgi_app())
    ready = app.get("/readyz").json
    assert ready == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    assert app.get("/readyz").cache_control.no_store


def test_readyz_fails_when_redis_is_down(app_settings: dict[str, Any]) -> None:
    settings = app_settings | {"redis.url": f"redis://127.0.0.1:{_closed_port()}/0"}
    app = webtest.TestApp(configure(settings).make_wsgi_app())
    ready = app.get("/readyz", status=503).json
    assert ready["checks"]["database"] == "ok"
    assert ready["checks"]["redis"] != "ok"


def test_request_id_is_kept_or_made_and_replica_named(app_settings: dict[str, Any]) -> None:
    settings = app_settings | {"server.replica_name": "web-7"}
    app = webtest.TestApp(configure(settings).make_wsgi_app())
    given = app.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    assert given.headers["X-Replica"] == "web-7"
    made = app.get("/healthz", headers={"X-Request-ID": "bad id\nwith newline"})
    assert made.headers["X-Request-ID"] != "bad id\nwith newline"
    assert len(made.headers["X-Request-ID"]) == 32


def test_metrics_count_requests_pool_and_cache(api: Api) -> None:
    user = api.register()
    api.article(user["token"])
    api.get("/api/tags")
    api.get("/api/tags")
    text = api.app.get("/metrics").text
    assert 'conduit_http_requests_total{method="GET",route="api.tags",status="200"}' in text
    assert 'conduit_http_requests_total{method="POST",route="api.users",status="201"}' in text
    assert "conduit_http_request_duration_seconds_bucket" in text
    assert 'conduit_db_pool_checked_out{server="primary"}' in text
    assert 'conduit_db_pool_size{server="primary"}' in text
    assert 'conduit_cache_events_total{event="hits",region="views"}' in text


def test_urls_that_are_not_utf8_are_a_400_everywhere(testapp: webtest.TestApp) -> None:
    for url in ("/%ff", "/profile/%ff", "/article/%ED%A0%80", "/tag/x?page=%ff"):
        assert testapp.get(url, status=400).headers["X-Replica"]
    assert testapp.get("/api/articles/%ff", status=400).json["errors"]["url"]


def test_cache_events_become_counter_increments() -> None:
    """Each region's new events since the last request, once each."""

    def counted(event: str) -> float:
        labels = {"region": "test-region", "event": event}
        return REGISTRY.get_sample_value("conduit_cache_events_total", labels) or 0.0

    deltas, stats = _CacheDeltas(), RegionStats()
    hits, misses = counted("hits"), counted("misses")
    stats.hits, stats.misses = 3, 1
    deltas.sync({"test-region": stats})
    deltas.sync({"test-region": stats})  # nothing new: nothing counted
    stats.hits = 5
    deltas.sync({"test-region": stats})
    assert (counted("hits") - hits, counted("misses") - misses) == (5, 1)
    assert counted("purges") == 0
