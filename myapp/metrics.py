"""Prometheus metrics at ``/metrics``.

Under gunicorn every worker is a process, so prometheus_client runs in
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by gunicorn.conf.py):
each worker writes its samples to files there, and ``/metrics`` — whichever
worker serves it — aggregates them all. Without that variable (waitress,
tests) the process's own registry is served.

Exported: requests and latency by route, method and status; the database
pool (checked out, overflow) per process; SQL statements sent; cache hits, misses, errors and
purges per region; background jobs sent, succeeded and failed (incremented
by myapp.tasks through :func:`job_event`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from pyramid.config import Configurator
from pyramid.registry import Registry
from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import view_config
from sqlalchemy import Engine, event

from myapp.cache import RegionStats

Handler = Callable[[Request], Response]

REQUESTS = Counter("conduit_http_requests_total", "HTTP requests", ["route", "method", "status"])
LATENCY = Histogram(
    "conduit_http_request_duration_seconds",
    "Time to answer a request",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# Per database server: ``server`` is "primary" or a read replica's name
# ("replica-1", ... in the order of DATABASE_REPLICA_URLS).
POOL_CHECKED_OUT = Gauge(
    "conduit_db_pool_checked_out", "Connections in use", ["server"], multiprocess_mode="livesum"
)
POOL_OVERFLOW = Gauge(
    "conduit_db_pool_overflow",
    "Connections beyond pool_size",
    ["server"],
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "conduit_db_pool_size", "Configured pool size", ["server"], multiprocess_mode="livesum"
)
CACHE = Counter("conduit_cache_events_total", "Cache events", ["region", "event"])
JOBS = Counter("conduit_jobs_total", "Background jobs", ["task", "event"])
STATEMENTS = Counter("conduit_db_statements_total", "SQL statements sent to the database")


def job_event(task: str, event: str) -> None:
    """Count a job ``event``: sent, succeeded, failed or retried."""
    JOBS.labels(task=task, event=event).inc()


NO_EVENTS = (0,) * len(RegionStats.KINDS)  # a region's totals before its first event


class _CacheDeltas:
    """Turns the cache's in-process totals into counter increments.

    Called after every request: a region whose totals did not move costs
    one tuple comparison, and each counter's labelled child is looked up
    once (``labels()`` parses its arguments on every call).
    """

    def __init__(self) -> None:
        self.seen: dict[str, tuple[int, ...]] = {}
        self.children: dict[tuple[str, str], Any] = {}

    def sync(self, stats: Mapping[str, RegionStats]) -> None:
        for region, counts in stats.items():
            now = counts.totals()
            last = self.seen.get(region)
            if now == last:
                continue
            for kind, total, before in zip(RegionStats.KINDS, now, last or NO_EVENTS, strict=True):
                if total > before:
                    child = self.children.get((region, kind))
                    if child is None:
                        child = self.children[(region, kind)] = CACHE.labels(
                            region=region, event=kind
                        )
                    child.inc(total - before)
            self.seen[region] = now


def engines(registry: Registry) -> dict[str, Engine]:
    """The process's engines by server: the primary and each read replica."""
    found = {"primary": registry["db_engine"]}
    router = registry.get("db_router")
    if router is not None:
        found.update((replica.name, replica.engine) for replica in router.replicas)
    return found


def _pool_syncer(registry: Registry) -> Callable[[], None]:
    """Sets each server's pool gauges from its engine's pool, when they
    changed (each set is a locked write to the multiprocess file)."""
    watched: list[tuple[Any, tuple[Any, Any, Any], list[tuple[int, int, int]]]] = []
    for server, engine in engines(registry).items():
        pool: Any = engine.pool
        if not hasattr(pool, "checkedout"):  # SQLite's pools keep no counts
            continue
        gauges = (
            POOL_CHECKED_OUT.labels(server=server),
            POOL_OVERFLOW.labels(server=server),
            POOL_SIZE.labels(server=server),
        )
        watched.append((pool, gauges, []))

    def sync() -> None:
        for pool, (checked_out, overflow, size), last in watched:
            now = (pool.checkedout(), max(pool.overflow(), 0), pool.size())
            if not last or last[0] != now:
                checked_out.set(now[0])
                overflow.set(now[1])
                size.set(now[2])
                last[:] = [now]

    return sync


def _count_statement(*_args: Any) -> None:
    STATEMENTS.inc()


def metrics_tween_factory(handler: Handler, registry: Registry) -> Handler:
    cache_deltas = _CacheDeltas()
    sync_pool = _pool_syncer(registry)
    cache = registry.get("cache")
    # Statements per request = this counter / requests (the benchmarks use it).
    for engine in engines(registry).values():  # the replicas' statements count too
        if not event.contains(engine, "before_cursor_execute", _count_statement):
            event.listen(engine, "before_cursor_execute", _count_statement)

    # The labelled children by (route, method, status): labels() parses its
    # arguments on every call, a few percent of a cached request.
    children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def metrics_tween(request: Request) -> Response:
        start = time.perf_counter()
        status = 500
        try:
            response = handler(request)
            status = response.status_code
            return response
        finally:
            route = request.matched_route.name if request.matched_route else "unmatched"
            key = (route, request.method, status)
            child = children.get(key)
            if child is None:
                child = children[key] = (
                    LATENCY.labels(route=route, method=request.method),
                    REQUESTS.labels(route=route, method=request.method, status=str(status)),
                )
            child[0].observe(time.perf_counter() - start)
            child[1].inc()
            sync_pool()
            if cache is not None and cache.enabled:
                cache_deltas.sync(cache.stats)

    return metrics_tween


def collect() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


@view_config(route_name="metrics")
def metrics(request: Request) -> Response:
    response = Response(collect(), content_type=CONTENT_TYPE_LATEST.split(";")[0])
    response.cache_control.no_store = True
    return response


def includeme(config: Configurator) -> None:
    config.add_route("metrics", "/metrics")
    # Right inside the request id: it times everything else, errors included.
    config.add_tween(
        "myapp.metrics.metrics_tween_factory", under="myapp.requestid.request_id_tween_factory"
    )
