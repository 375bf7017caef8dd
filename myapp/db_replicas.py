"""Read replicas: which server answers a query.

Settings (env in brackets)

``sqlalchemy.replica_urls`` [DATABASE_REPLICA_URLS]
    Streaming replicas of the primary, comma-separated. Empty: no routing at
    all (sessions are plain ``Session`` objects, exactly as without this).
``db.replica_max_lag`` [DB_REPLICA_MAX_LAG], seconds, default 5
    A replica further behind than this is not used.
``db.replica_check_interval`` [DB_REPLICA_CHECK_INTERVAL], seconds, default 2
    How long a replica's health and lag are trusted before they are checked
    again (one small query, by whichever request needs the replica next).
``db.primary_after_write`` [DB_PRIMARY_AFTER_WRITE], seconds, default
    ``replica_max_lag + replica_check_interval + 1``
    Read-your-writes: how long a user who wrote reads from the primary.

Routing rules (for ``request.dbsession``; every other session — scripts,
jobs — uses the primary only):

1. Requests with an unsafe method (POST, PUT, PATCH, DELETE) use the
   primary for everything: their reads decide their writes.
2. A user who wrote in the last ``primary_after_write`` seconds reads from
   the primary (read-your-writes). The marker is a short-lived Redis key per
   user id, set after the writing transaction commits; a user id is found
   from the request's credentials alone (the API token's subject, the page
   session's user), before any query, so even the query that loads the user
   is routed right — and a user who has just registered is found.
3. Once a transaction has written (a flush, or any statement that is not a
   plain SELECT), it stays on the primary: it must see its own writes.
4. Other SELECTs go to a usable replica (round robin); if none is usable,
   to the primary.

Why ``primary_after_write >= max_lag + check_interval`` guarantees
read-your-writes: a replica is used only if, at a check at most
``check_interval`` ago, it had replayed a commit at most ``max_lag`` old.
Replay follows commit order, so it has every commit older than
``max_lag + check_interval``: the writer's among them.

A replica is *usable* when the check query answers and its lag is within
bounds. The lag is ``now() - pg_last_xact_replay_timestamp()``: the age of
the newest commit it has replayed. A primary with no writes makes that
grow on a perfectly healthy replica, so a replica that looks late first
gets a heartbeat — a tiny transaction on the primary (``txid_current()``
forces a commit record) — and is measured again after it had a moment
(at most 0.25 s) to replay it: an idle, caught-up replica passes, a stuck
one does not. (Comparing WAL positions instead fails on idle systems: the
last record may be half-flushed for minutes, and the replay position then
never equals the receive position.) Busy systems never need the
heartbeat. A replica whose connection fails in a request is marked
unusable at once, and the error is marked retryable: pyramid_retry
replays the request, which then reads from the primary. ``max_lag`` must
exceed the clock skew between the servers (it is measured against the
primary's commit timestamps).

Known limit: a shared cache entry filled from a replica (by another
client, within ``max_lag`` of a purge) holds data up to ``max_lag`` old
until it expires or is purged again; see docs/database.md.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import redis
from pyramid_retry import mark_error_retryable
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

READ_FROM_REPLICA = "db.read_from_replica"  # session.info: a callable, then a bool
WROTE = "db.wrote"
USED = "db.used"  # session.info: names of the servers this session read from

LAG_QUERY = text(
    "SELECT pg_is_in_recovery(), EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())"
)
HEARTBEAT = text("SELECT txid_current()")
HEARTBEAT_WAIT = 0.25


@dataclass
class Replica:
    name: str
    engine: Engine
    checked_at: float = float("-inf")
    usable: bool = False
    lag: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class ReplicaRouter:
    """Per-process view of the replicas: usable or not, checked now and then."""

    def __init__(
        self,
        primary: Engine,
        engines: Iterable[Engine],
        max_lag: float = 5.0,
        check_interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.primary = primary
        self.replicas = [
            Replica(f"replica-{i}", engine) for i, engine in enumerate(engines, start=1)
        ]
        self.max_lag = max_lag
        self.check_interval = check_interval
        self.clock = clock
        self._turn = itertools.count()
        for replica in self.replicas:
            event.listen(replica.engine, "handle_error", self._on_error(replica))

    def _on_error(self, replica: Replica) -> Callable[[Any], None]:
        def handle_error(context: Any) -> None:
            # A connection that cannot be made or was lost: stop using this
            # replica now, and let pyramid_retry replay the request.
            if context.is_disconnect or context.connection is None:
                self.mark_down(replica, str(context.original_exception).splitlines()[0])
                if context.sqlalchemy_exception is not None:
                    mark_error_retryable(context.sqlalchemy_exception)

        return handle_error

    def mark_down(self, replica: Replica, reason: str) -> None:
        if replica.usable:
            log.warning("%s is not usable: %s", replica.name, reason)
        replica.usable = False
        replica.checked_at = self.clock()

    def _lag(self, replica: Replica) -> float | None:
        with replica.engine.connect() as conn:
            in_recovery, lag = conn.execute(LAG_QUERY).one()
            conn.rollback()
        if not in_recovery:
            return 0.0
        return None if lag is None else max(float(lag), 0.0)

    def _heartbeat(self) -> bool:
        try:
            with self.primary.connect() as conn:
                conn.execute(HEARTBEAT)
                conn.commit()
        except Exception as exc:
            log.warning("replica heartbeat failed on the primary: %s", exc)
            return False
        return True

    def check(self, replica: Replica) -> None:
        """Measure ``replica``'s lag now (with a heartbeat if it looks late)."""
        try:
            lag = self._lag(replica)
            if (lag is None or lag > self.max_lag) and self._heartbeat():
                deadline = time.monotonic() + HEARTBEAT_WAIT
                while (lag is None or lag > self.max_lag) and time.monotonic() < deadline:
                    time.sleep(0.02)
                    lag = self._lag(replica)
        except Exception as exc:
            self.mark_down(replica, f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
            return
        replica.lag = lag
        usable = lag is not None and lag <= self.max_lag
        if usable != replica.usable:
            log.warning("%s is %s (lag %s s)", replica.name, "usable" if usable else "lagging", lag)
        replica.usable = usable
        replica.checked_at = self.clock()

    def _fresh(self, replica: Replica) -> bool:
        return self.clock() - replica.checked_at < self.check_interval

    def refresh(self, replica: Replica) -> None:
        """Check ``replica`` if its state is stale; one thread checks, others go on."""
        if self._fresh(replica) or not replica.lock.acquire(blocking=False):
            return
        try:
            if not self._fresh(replica):
                self.check(replica)
        finally:
            replica.lock.release()

    def choose(self) -> Replica | None:
        """A usable replica (round robin), or None."""
        for replica in self.replicas:
            self.refresh(replica)
        usable = [r for r in self.replicas if r.usable]
        if not usable:
            return None
        return usable[next(self._turn) % len(usable)]

    def dispose(self) -> None:
        for replica in self.replicas:
            replica.engine.dispose()


class RoutingSession(Session):
    """SQLAlchemy's documented routing pattern (``Session.get_bind``).

    ``info[READ_FROM_REPLICA]`` says whether this session may read from a
    replica at all (request sessions decide it on first use, see
    myapp.db); writes, locking reads and textual statements always go to
    the primary (``self.bind``), and once one did, so does everything else.
    """

    router: ReplicaRouter | None = None

    def get_bind(self, mapper: Any = None, *, clause: Any = None, **kw: Any) -> Any:
        primary = super().get_bind(mapper, clause=clause, **kw)
        if self.router is None or self._flushing or self.info.get(WROTE) or clause is None:
            # (No clause: a flush, ``connection()``, or a question such as
            # ``get_bind().dialect``; writes through it are seen by after_flush.)
            return primary
        if not _plain_select(clause):
            self.info[WROTE] = True
            return primary
        allowed = self.info.get(READ_FROM_REPLICA)
        if callable(allowed):
            allowed = self.info[READ_FROM_REPLICA] = bool(allowed())
        if not allowed:
            return primary
        replica = self.router.choose()
        if replica is None:
            return primary
        self.info.setdefault(USED, set()).add(replica.name)
        return replica.engine


def _plain_select(clause: Any) -> bool:
    return bool(getattr(clause, "is_select", False)) and (
        getattr(clause, "_for_update_arg", None) is None
    )


def _mark_wrote(session: Session, _context: Any) -> None:
    session.info[WROTE] = True


def watch_writes(session_class: type[Session]) -> None:
    event.listen(session_class, "after_flush", _mark_wrote)


class Markers:
    """Read-your-writes markers: "user N wrote recently", shared by all processes.

    In Redis when ``redis.url`` is set (keys expire by themselves); else in
    this process only (enough for one process; with several, configure
    Redis). Redis failing is answered safely: a marker that cannot be read
    counts as set (the primary is always right).
    """

    def __init__(self, seconds: float, redis_url: str | None = None, prefix: str = "conduit:"):
        self.seconds = seconds
        self.prefix = f"{prefix}primary-after-write:"
        self.client = (
            redis.Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
            if redis_url
            else None
        )
        self.local: dict[int, float] = {}

    def set(self, user_ids: Iterable[int]) -> None:
        ids = set(user_ids)
        if not ids:
            return
        if self.client is None:
            until = time.monotonic() + self.seconds
            self.local.update(dict.fromkeys(ids, until))
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            for user_id in ids:
                pipe.set(f"{self.prefix}{user_id}", 1, px=int(self.seconds * 1000))
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("could not set read-your-writes markers %s: %s", sorted(ids), exc)

    def is_set(self, user_id: int) -> bool:
        if self.client is None:
            return self.local.get(user_id, 0.0) > time.monotonic()
        try:
            return bool(self.client.exists(f"{self.prefix}{user_id}"))
        except redis.RedisError as exc:
            log.warning("read-your-writes marker unreadable (primary used): %s", exc)
            return True
