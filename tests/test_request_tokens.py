"""The request's token memo (myapp.cache), the process copy of token-keyed
entries and the caller's cached row, on a real Redis with two app instances
(two replicas): a password change still logs other browsers out, retries,
threads, scripts and jobs read their own tokens, and writes purge what the
previous release reads during a rolling deploy."""

from __future__ import annotations

import threading
from typing import Any

import pyramid.scripting
import webtest
from pyramid.request import Request
from pyramid.response import Response
from pyramid_retry import RetryableException
from sqlalchemy.engine import Connection

from myapp.cache import (
    _REQUEST_TOKENS,
    NO_VALUE,
    Pending,
    request_tokens_tween_factory,
    without_request_tokens,
)
from myapp.config import configure
from tests.cache_support import cache_of, redis_settings, two_apps
from tests.conftest import Api
from tests.pages_support import Browser, form, state
from tests.test_pages_sessions_redis import prefix, replica, same_browser, store

# Fixtures shared with the other cache and session tests.
__all__ = ["prefix", "redis_settings", "replica", "store", "two_apps"]


def test_a_new_password_logs_out_a_browser_on_a_warm_replica(replica: Any) -> None:
    """Replica b keeps the user's row in the process (identities is LOCAL);
    a password change committed on replica a must still log the other
    browser out on b's very next request, and keep the changer logged in."""
    a, b = replica(), replica()
    first = Browser(a)
    name = first.register()
    second = Browser(b)
    second.login(f"{name}@example.com")
    for _ in range(3):  # b now serves the row from its own copy
        assert state(second.get("/"))["user"]["username"] == name
    assert cache_of(Api(b)).stats["identities"].local >= 1
    settings = form(first.get("/settings"), "/settings")
    settings["password"] = "a-brand-new-password"
    settings.submit(status=303)
    assert state(second.get("/")) == {"user": None}
    # The browser that changed it, now landing on b, stays logged in.
    assert state(Browser(same_browser(a, b)).get("/"))["user"]["username"] == name


def _retry_app(settings: dict[str, Any], connection: Connection, seen: list[str]) -> Any:
    config = configure(settings)

    def view(request: Request) -> Response:
        seen.append(request.cache.generation("lists"))
        if len(seen) == 1:
            # Another replica commits a write to a list now; this attempt fails.
            request.cache.purge(Pending(generations={"lists"}))
            raise RetryableException()
        return Response("ok")

    config.add_route("review_s3_retry", "/_review_s3/retry")
    config.add_view(view, route_name="review_s3_retry")
    app = config.make_wsgi_app()
    app.registry["dbsession_factory"].configure(
        bind=connection, join_transaction_mode="create_savepoint"
    )
    return app


def test_a_retried_request_reads_the_tokens_again(
    redis_settings: dict[str, Any], connection: Connection
) -> None:
    """Each attempt of a retried request has its own memo: the second attempt
    sees a token replaced between attempts (a memo kept in the environ, or
    set outside pyramid_retry's loop, would hand it the old one)."""
    seen: list[str] = []
    app = webtest.TestApp(_retry_app(redis_settings, connection, seen))
    app.get("/_review_s3/retry", extra_environ={"HTTP_HOST": "localhost"})
    assert len(seen) == 2 and seen[0] != seen[1]


def test_the_memo_is_per_request_and_per_thread(two_apps: tuple[Api, Api]) -> None:
    """waitress serves requests on threads: two requests in flight at once get
    a memo each, and nothing is left behind on the thread afterwards."""
    a, _ = two_apps
    registry = a.app.app.registry
    barrier = threading.Barrier(2, timeout=10)
    memos: dict[str, dict[str, str] | None] = {}
    after: dict[str, object] = {}

    def handler(request: Request) -> Response:
        memo = _REQUEST_TOKENS.get()
        memos[threading.current_thread().name] = memo
        barrier.wait()  # both requests are inside the tween now
        if memo is not None:
            memo[threading.current_thread().name] = "mine"
        barrier.wait()
        return Response("ok")

    tween = request_tokens_tween_factory(handler, registry)

    def serve() -> None:
        tween(Request.blank("/"))
        after[threading.current_thread().name] = _REQUEST_TOKENS.get()

    threads = [threading.Thread(target=serve, name=f"t{i}") for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert memos["t0"] == {"t0": "mine"} and memos["t1"] == {"t1": "mine"}
    assert after == {"t0": None, "t1": None}


def test_scripts_and_jobs_read_current_tokens(two_apps: tuple[Api, Api]) -> None:
    """pshell, scripts and jobs (pyramid.scripting.prepare, no tweens) keep no
    memo: a token replaced by a commit is seen by their next lookup."""
    a, b = two_apps
    env = pyramid.scripting.prepare(registry=a.app.app.registry)
    try:
        cache = env["request"].cache
        before = cache.generation("lists")
        cache_of(b).purge(Pending(generations={"lists"}))
        assert cache.generation("lists") != before
    finally:
        env["closer"]()


def test_a_job_run_inside_a_request_reads_current_tokens(two_apps: tuple[Api, Api]) -> None:
    """The inline job runner runs a job in the request's thread: the job
    does not inherit the request's memo (myapp.tasks.run_attempt)."""
    a, b = two_apps
    registry = a.app.app.registry
    seen: dict[str, str] = {}

    def job(request: Any) -> None:
        seen["job"] = request.cache.generation("lists")

    def handler(request: Request) -> Response:
        seen["request"] = request.cache.generation("lists")
        cache_of(b).purge(Pending(generations={"lists"}))  # another replica writes
        with without_request_tokens():
            job(request)
        seen["request again"] = request.cache.generation("lists")
        return Response("ok")

    env = pyramid.scripting.prepare(registry=registry)
    try:
        request_tokens_tween_factory(handler, registry)(env["request"])
    finally:
        env["closer"]()
    assert seen["request again"] == seen["request"]  # the request's own view holds
    assert seen["job"] != seen["request"]  # the job reads the write


def test_writes_also_purge_what_the_previous_release_trusts(two_apps: tuple[Api, Api]) -> None:
    """A rolling update (README: start-first / zero-downtime) runs the previous
    release beside this one on the same Redis and CACHE_PREFIX. The previous
    release versions a caller's row by ``identities:ver:{id}`` and their flags
    by generation ``viewer:{id}``; a password change or a favourite committed
    by this release must replace those too, or the old replicas keep a
    logged-out browser in (up to 5 min) and show stale flags (up to 1 min)."""
    a, _ = two_apps
    cache = cache_of(a)
    author, reader = a.register(), a.register()
    slug = a.article(author["token"])["slug"]
    reader_id = a.app.app.registry["tokens"].user_id(reader["token"])
    # What a replica of the previous release has stored for the reader.
    cache.regions["identities"].set(f"ver:{reader_id}", "previous-release")
    cache.regions["generations"].set(f"gen:viewer:{reader_id}", "previous-release")
    a.put("/api/user", {"user": {"password": "a-brand-new-password"}}, reader["token"])
    a.post(f"/api/articles/{slug}/favorite", None, reader["token"], status=200)
    assert cache.regions["identities"].get(f"ver:{reader_id}") is NO_VALUE
    assert cache.regions["generations"].get(f"gen:viewer:{reader_id}") != "previous-release"
