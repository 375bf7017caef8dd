"""A small in-process copy of cache entries whose key names their content.

Keys in the ``lists``, ``views`` and ``flags`` regions embed generation or
version tokens (myapp.cache): a write never changes what such a key holds,
it makes a new token, so the next request asks for a new key. An entry
fetched from Redis can therefore be kept in the process and served again
without asking Redis for it — the request still reads the current tokens
from Redis (one round trip for all of them), so a write committed on any
replica is seen by the next request here, exactly as without this copy.

What the copy saves is the round trip for the entry and its unpickling,
which for a logged-in list are most of a warm request.

Bounded twice: at most ``max_entries`` entries (least recently used go
first), each for at most ``ttl`` seconds, so that the rare entry that is
outdated under a current token (one filled from a lagging read replica, or
left when a purge was lost while Redis was unreachable — see
docs/database.md) lives at most ``ttl`` seconds longer here than in Redis.

Values are shared by every request of the process, as the memory backend's
are: callers never mutate what the cache returns.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from dogpile.cache.api import NO_VALUE


class LocalCache:
    def __init__(self, max_entries: int = 512, ttl: float = 10.0):
        self.max_entries = max_entries
        self.ttl = ttl
        self._entries: OrderedDict[tuple[str, str], tuple[float, Any]] = OrderedDict()
        # waitress serves requests on threads; gunicorn's sync workers do not.
        self._lock = threading.Lock()

    def get(self, region: str, key: str) -> Any:
        """The value kept for ``(region, key)``, or ``NO_VALUE``."""
        now = time.monotonic()
        with self._lock:
            found = self._entries.get((region, key))
            if found is None:
                return NO_VALUE
            if found[0] <= now:
                del self._entries[(region, key)]
                return NO_VALUE
            self._entries.move_to_end((region, key))
            return found[1]

    def put(self, region: str, key: str, value: Any) -> None:
        expires = time.monotonic() + self.ttl
        with self._lock:
            self._entries[(region, key)] = (expires, value)
            self._entries.move_to_end((region, key))
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
