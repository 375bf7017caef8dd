"""Caching: dogpile.cache regions, purged after commit, failing open.

Regions (what each holds, and for how long at most):

* ``tags``        the tag list (``/api/tags``, the home page's sidebar), by the
                  ``lists`` generation; 5 min.
* ``articles``    an article's public representation by slug (author profile,
                  tags, counts and the rendered, sanitized body); 1 hour.
* ``profiles``    a user's public profile by username; 1 hour.
* ``lists``       anonymous pages of article lists (global, by tag, by author,
                  by favouriter) with their ``articlesCount``; 1 min.
* ``views``       whole rendered responses (body bytes, ETag) of public GETs
                  made without credentials, by URL (myapp.viewcache); 1 min.
* ``identities``  a user's row without its password hash, by id, for the
                  reads of logged-in requests (myapp.identities); 5 min.
* ``flags``       one viewer's ``favorited``/``following`` flags for the ids
                  of one page, by viewer (myapp.services.public); 1 min.
* ``comments``    an article's comments as anyone logged out sees them, by
                  article id (myapp.services.comments); 5 min.
* ``generations`` the generation tokens that version the keys above; 1 day.

With Redis, each process also keeps the entries of the ``LOCAL`` regions it
has fetched for a few seconds (myapp.localcache): their keys embed tokens, so
a key's content never changes, and a repeat costs only the round trip that
reads the current tokens.

Shared entries hold nothing per-user: ``favorited``/``following`` are merged
in after the lookup from the viewer's own ``flags`` entry (keyed by the
viewer's id), so one user never sees another's flags and logged-in users
still share the cached representations.

Writes never update the cache. Keys touched by a write are collected when the
session flushes and purged only **after the transaction commits** (nothing on
rollback): purging before the commit would let a concurrent reader refill the
cache with the old row. Lists are not purged key by key: their keys embed a
generation token, and a write replaces the token.

Production uses ``dogpile.cache.redis`` (shared by every replica, with a
distributed lock so that N concurrent misses on one key run one
regeneration) under a deployment key prefix; the embedded default uses
process memory. Redis being down or slow never breaks a request: calls time
out fast, the cache is bypassed for a back-off interval, one warning is
logged per interval, and caching resumes by itself (myapp.cache_failopen).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from dogpile.cache import make_region
from dogpile.cache.api import NO_VALUE, CacheBackend
from dogpile.cache.region import CacheRegion
from pyramid.config import Configurator
from pyramid.registry import Registry
from pyramid.request import Request
from pyramid.response import Response
from pyramid.settings import asbool
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from myapp.cache_failopen import Breaker, FailOpenBackend
from myapp.localcache import LocalCache

T = TypeVar("T")
Handler = Callable[[Request], Response]

REGIONS = {
    "tags": 300,
    "articles": 3600,
    "profiles": 3600,
    "lists": 60,
    "views": 60,
    "identities": 300,
    "flags": 60,
    "comments": 300,
    "generations": 86400,
}
# Regions whose values are expensive to make share one lock across replicas
# (Redis), so N concurrent misses run one regeneration. The others are cheap
# to make from what the expensive ones hold (a view from a cached page, a row
# by primary key) and keyed per URL or per user: a lock there would cost two
# more round trips per miss, and a replica that dies while holding one would
# make every other wait for the lock's timeout (say, nginx retrying the same
# URL on another replica). They lock within the process only.
DISTRIBUTED_LOCK = {"tags", "articles", "profiles", "lists", "generations"}
# Regions whose keys embed every token their content depends on (see
# myapp.localcache): safe to keep in the process as well.
LOCAL = frozenset({"lists", "views", "flags", "identities", "tags"})
PENDING = "cache.pending"


@dataclass
class RegionStats:
    hits: int = 0
    misses: int = 0
    errors: int = 0
    purges: int = 0
    # Hits served from the process's own copy (myapp.localcache), also in ``hits``.
    local: int = 0

    # The order of :meth:`totals`: each is a ``conduit_cache_events_total`` event.
    KINDS: ClassVar[tuple[str, ...]] = ("hits", "misses", "errors", "purges", "local")

    def totals(self) -> tuple[int, int, int, int, int]:
        return (self.hits, self.misses, self.errors, self.purges, self.local)


@dataclass
class Pending:
    """What one transaction's writes will purge once it commits."""

    keys: dict[str, set[str]] = field(default_factory=dict)
    generations: set[str] = field(default_factory=set)

    def add(self, region: str, *keys: str) -> None:
        self.keys.setdefault(region, set()).update(keys)


Collector = Callable[[Session, Iterable[Any], Pending], None]


class Cache:
    def __init__(
        self,
        regions: dict[str, CacheRegion],
        breaker: Breaker,
        enabled: bool = True,
        local: LocalCache | None = None,
    ):
        self.regions = regions
        self.breaker = breaker
        self.enabled = enabled
        self.local = local
        self.stats = {name: RegionStats() for name in REGIONS}
        self.collectors: list[Collector] = []

    # -- reading ---------------------------------------------------------
    def get_or_create(
        self,
        region: str,
        key: str,
        creator: Callable[[], T],
        valid: Callable[[T], bool] | None = None,
        should_cache: Callable[[T], bool] | None = None,
    ) -> T:
        """The cached value, or ``creator()``'s (stored); one creator per key at a time.

        ``valid`` rejects a cached value that is outdated in a way expiry
        cannot see (e.g. built under an older generation); ``should_cache``
        keeps a created value out of the cache (it is still returned).
        """
        if not self.enabled:
            return creator()
        stats = self.stats[region]
        local = self.local if region in LOCAL else None
        if local is not None:
            kept = local.get(region, key)
            if kept is not NO_VALUE:
                stats.hits += 1
                stats.local += 1
                return kept
        created = False

        def create() -> T:
            nonlocal created
            created = True
            return creator()

        value = self.regions[region].get_or_create(key, create, should_cache_fn=should_cache)
        if not created and valid is not None and not valid(value):
            value = create()
            self.regions[region].set(key, value)
        if created:
            stats.misses += 1
        else:
            stats.hits += 1
        # Not while Redis is unreachable: keys then embed throw-away tokens.
        if (
            local is not None
            and not self.breaker.is_open
            and (should_cache is None or should_cache(value))
        ):
            local.put(region, key, value)
        return value

    def generation(self, name: str) -> str:
        """The current token of generation ``name`` (made on first use)."""
        return self.generations(name)[0]

    def generations(self, *names: str) -> list[str]:
        """The current tokens of generations ``names``, in one round trip.

        Within a request (:func:`request_tokens`) a token is read once: the
        request's later lookups reuse it, so a view that asks for the
        tokens the caller's identity already fetched sends nothing.
        """
        if not self.enabled:
            return ["off"] * len(names)
        memo = _REQUEST_TOKENS.get()
        known = {} if memo is None else memo
        missing = [name for name in names if name not in known]
        if missing:
            region = self.regions["generations"]
            values = region.get_multi([f"gen:{name}" for name in missing])
            for name, value in zip(missing, values, strict=True):
                known[name] = (
                    region.get_or_create(f"gen:{name}", new_token) if value is NO_VALUE else value
                )
        return [known[name] for name in names]

    # -- purging ---------------------------------------------------------
    def purge(self, pending: Pending) -> None:
        if not self.enabled:
            return
        for region, keys in pending.keys.items():
            if keys:
                self.regions[region].delete_multi(sorted(keys))
                self.stats[region].purges += len(keys)
        for name in pending.generations:
            self.regions["generations"].set(f"gen:{name}", new_token())
            self.stats["generations"].purges += 1

    def watch(self, session_factory: sessionmaker[Session]) -> None:
        """Collect purges on flush, run them after commit, drop them on rollback."""
        event.listen(session_factory, "after_flush", self._after_flush)
        event.listen(session_factory, "after_commit", self._after_commit)
        event.listen(session_factory, "after_rollback", self._after_rollback)

    def _after_flush(self, session: Session, _context: Any) -> None:
        pending = session.info.setdefault(PENDING, Pending())
        changed = [*session.new, *session.dirty, *session.deleted]
        for collector in self.collectors:
            collector(session, changed, pending)

    # SQLAlchemy sends both events for savepoints too (in_nested_transaction
    # is then true): a released savepoint is not yet committed, and one rolled
    # back leaves the transaction's earlier changes (its purges are kept:
    # purging too much costs a miss, too little serves stale data).
    def _after_commit(self, session: Session) -> None:
        if session.in_nested_transaction():
            return
        pending = session.info.pop(PENDING, None)
        if pending is not None:
            self.purge(pending)

    def _after_rollback(self, session: Session) -> None:
        if not session.in_nested_transaction():
            session.info.pop(PENDING, None)

    def invalidate_all(self) -> None:
        """Forget everything this process cached (tests start from empty)."""
        for region in self.regions.values():
            region.invalidate(hard=True)
        if self.local is not None:
            self.local.clear()


# The generation tokens one request has read (see Cache.generations).
_REQUEST_TOKENS: ContextVar[dict[str, str] | None] = ContextVar("cache_tokens", default=None)


def request_tokens_tween_factory(handler: Handler, registry: Registry) -> Handler:
    """Each request (each attempt of a retried one) reads a token once: every
    lookup of the request sees the same version of the data, and the
    caller's identity fetches the list generations with its own tokens."""

    def request_tokens_tween(request: Request) -> Response:
        reset = _REQUEST_TOKENS.set({})
        try:
            return handler(request)
        finally:
            _REQUEST_TOKENS.reset(reset)

    return request_tokens_tween


@contextmanager
def without_request_tokens() -> Iterator[None]:
    """Run outside any request's token memo: a job run inline (in the
    request's thread) reads the tokens as they are when it runs, not as
    the request that dispatched it read them."""
    reset = _REQUEST_TOKENS.set(None)
    try:
        yield
    finally:
        _REQUEST_TOKENS.reset(reset)


def pending(session: Session) -> Pending:
    """This transaction's purge list, for writes the flush cannot see (bulk SQL)."""
    return session.info.setdefault(PENDING, Pending())


def new_token() -> str:
    """A fresh generation or version token: a new one makes old keys unreachable."""
    return uuid.uuid4().hex[:12]


def build_cache(settings: dict[str, Any]) -> Cache:
    redis_url = settings.get("cache.redis_url") or settings.get("redis.url")
    backend = settings.get("cache.backend") or ("redis" if redis_url else "memory")
    prefix = str(settings.get("cache.prefix", "conduit:"))
    timeout = float(settings.get("cache.socket_timeout", 0.25))
    breaker = Breaker(float(settings.get("cache.backoff_seconds", 5)))
    regions: dict[str, CacheRegion] = {}
    local = None
    local_entries = int(settings.get("cache.local_entries", 512))
    if backend == "redis" and local_entries > 0:
        local = LocalCache(local_entries, float(settings.get("cache.local_ttl", 10)))
    enabled = asbool(settings.get("cache.enabled", True))
    cache = Cache(regions, breaker, enabled=enabled, local=local)
    for name, expiry in REGIONS.items():
        arguments: dict[str, Any] = {}
        if backend == "redis":
            arguments = {
                "url": redis_url,
                "distributed_lock": name in DISTRIBUTED_LOCK,
                "thread_local_lock": False,
                # A dead holder's lock frees itself after this long; a
                # regeneration takes milliseconds.
                "lock_timeout": int(settings.get("cache.lock_timeout", 5)),
                "lock_prefix": "_lock",
                # Redis drops what dogpile considers expired a while later.
                "redis_expiration_time": expiry * 2,
                "socket_timeout": timeout,
                "socket_connect_timeout": timeout,
            }
        region = make_region(
            name=name, key_mangler=lambda key, name=name: f"{prefix}{name}:{key}"
        ).configure(
            f"dogpile.cache.{backend}",
            expiration_time=expiry,
            arguments=arguments,
            wrap=[FailOpenBackend(breaker, cache.stats[name])],
        )
        regions[name] = region
    return cache


def includeme(config: Configurator) -> None:
    cache = build_cache(config.get_settings())
    config.registry["cache"] = cache
    cache.watch(config.registry["dbsession_factory"])
    config.add_request_method(lambda request: request.registry["cache"], "cache", reify=True)
    config.add_tween("myapp.cache.request_tokens_tween_factory")


__all__ = ["NO_VALUE", "Cache", "CacheBackend", "Pending", "build_cache", "new_token", "pending"]
