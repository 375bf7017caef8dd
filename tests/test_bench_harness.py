"""bench/harness.py: the app-side accounting of one benchmark run."""

from __future__ import annotations

from bench.harness import MIN_APP_REQUESTS, account


def test_every_request_reached_a_replica() -> None:
    before = {1: {"requests": 10, "statements": 5, "cache_hits": 0}, 2: {}}
    after = {
        1: {"requests": 510, "statements": 505, "cache_hits": 300, "cache_misses": 100},
        2: {"requests": 500, "statements": 500, "cache_hits": 100},
    }
    found = account(before, after, [1, 2], 1000)
    assert found["requests_per_replica"] == {"web-1": 500, "web-2": 500}
    assert found["queries_per_request"] == 1.0
    assert found["cache_hit_ratio"] == 0.8


def test_nginx_answered_nearly_all_of_them() -> None:
    """The micro-cache: a stray request reached the app, not one SQL per request."""
    after = {1: {"requests": 1, "statements": 1, "cache_misses": 1}}
    found = account({}, after, [1], 500_000)
    assert found["requests_per_replica"] == {"web-1": 1}
    assert found["queries_per_request"] == 1 / 500_000
    assert found["cache_hit_ratio"] is None  # too few app requests to say
    assert MIN_APP_REQUESTS > 1


def test_no_replica_metrics() -> None:
    assert account({}, {}, [1, 2], 100) == {"requests_per_replica": {}}
