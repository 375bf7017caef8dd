"""Redis failing open: a circuit breaker and a backend proxy that turn
Redis errors into cache misses (myapp.cache uses them for every region).

Redis being down or slow never breaks a request: calls time out fast, the
cache is bypassed for a back-off interval, one warning is logged per
interval, and caching resumes by itself.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

from dogpile.cache.api import NO_VALUE
from dogpile.cache.proxy import ProxyBackend

log = logging.getLogger("myapp.cache")


class Stats(Protocol):
    errors: int


class Breaker:
    """Open for ``backoff`` seconds after a Redis error: the cache is skipped."""

    def __init__(self, backoff: float, warn_interval: float = 60.0):
        self.backoff = backoff
        self.warn_interval = warn_interval
        self.open_until = 0.0
        self.last_warning = 0.0
        self.lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        return time.monotonic() < self.open_until

    def trip(self, exc: BaseException) -> None:
        now = time.monotonic()
        with self.lock:
            self.open_until = now + self.backoff
            if now - self.last_warning >= self.warn_interval:
                self.last_warning = now
                log.warning("cache unavailable, bypassing it for %.0fs: %s", self.backoff, exc)


class _FailOpenMutex:
    """A distributed lock that, if Redis fails, lets the caller go ahead."""

    def __init__(self, mutex: Any, breaker: Breaker):
        self.mutex = mutex
        self.breaker = breaker

    def acquire(self, wait: bool = True) -> bool:
        try:
            return bool(self.mutex.acquire(wait))
        except Exception as exc:
            self.breaker.trip(exc)
            return True

    def release(self) -> None:
        try:
            self.mutex.release()
        except Exception as exc:
            self.breaker.trip(exc)

    def locked(self) -> bool:
        try:
            return bool(self.mutex.locked())
        except Exception:
            return False


class FailOpenBackend(ProxyBackend):
    """Turns backend errors into misses and no-ops, and counts them."""

    def __init__(self, breaker: Breaker, stats: Stats):
        super().__init__()
        self.breaker = breaker
        self.stats = stats

    def _call(self, default: Any, method: str, *args: Any) -> Any:
        if self.breaker.is_open:
            return default
        try:
            return getattr(self.proxied, method)(*args)
        except Exception as exc:
            self.stats.errors += 1
            self.breaker.trip(exc)
            return default

    # dogpile calls the *_serialized methods on backends that serialize
    # (Redis) and the plain ones on the others (memory): guard both.
    def get(self, key: Any) -> Any:
        return self._call(NO_VALUE, "get", key)

    def get_serialized(self, key: Any) -> Any:
        return self._call(NO_VALUE, "get_serialized", key)

    def get_multi(self, keys: Any) -> Any:
        return self._call([NO_VALUE] * len(keys), "get_multi", keys)

    def get_serialized_multi(self, keys: Any) -> Any:
        return self._call([NO_VALUE] * len(keys), "get_serialized_multi", keys)

    def set(self, key: Any, value: Any) -> None:
        self._call(None, "set", key, value)

    def set_serialized(self, key: Any, value: Any) -> None:
        self._call(None, "set_serialized", key, value)

    def set_multi(self, mapping: Any) -> None:
        self._call(None, "set_multi", mapping)

    def set_serialized_multi(self, mapping: Any) -> None:
        self._call(None, "set_serialized_multi", mapping)

    def delete(self, key: Any) -> None:
        self._call(None, "delete", key)

    def delete_multi(self, keys: Any) -> None:
        self._call(None, "delete_multi", keys)

    def get_mutex(self, key: Any) -> Any:
        if self.breaker.is_open:
            return None  # dogpile falls back to an in-process lock
        mutex = self._call(None, "get_mutex", key)
        return None if mutex is None else _FailOpenMutex(mutex, self.breaker)
