"""A kept read connection: one per process and engine, kept between
anonymous reads (Postgres).

An anonymous read (myapp.db_reads.CoreReads) used to check a connection out
of the pool at its first statement and return it at the end: with the
pool's events (statement counts, autocommit reset) and the Connection
object, ~7% of an uncached list page's CPU, for a connection that the next
request of the same worker takes straight back. So the process keeps it,
as Django keeps a connection with ``CONN_MAX_AGE``:

* one per process and engine, used by one request at a time: a sync
  worker's every anonymous read; with threads (gthread), whichever thread
  finds it free, the others check out of the pool as before;
* kept at most ``db.read_connection_max_age`` seconds (default 300; 0
  turns this off: a checkout per request, as before), so a replaced
  server or a changed setting reaches every worker soon, as
  ``pool_recycle`` would; off with ``pool_pre_ping`` (which asks for a
  check at every checkout), with read replicas (their routing needs the
  request's session anyway), behind PgBouncer (no autocommit reads);
* in autocommit for its whole life (no transaction, no lock, no snapshot
  is held between requests); SQLAlchemy's own transaction around a
  statement is ended when each request is done (no round trip);
* given back to the pool, when idle, as soon as any thread makes a
  request's Session (a write, a logged-in read), so the pool is never
  short by the connection kept;
* dropped when SQLAlchemy invalidated it (a dead server connection): the
  request that met the error is retried (myapp.db: each request counts its
  statements afresh, through ``on_reuse``), the next one connects anew;
* per process: a forked child never uses its parent's socket.

It comes from the engine's pool, so the pool budget (myapp.db_budget) still
bounds a process's connections; the pool's "checked out" gauge counts it.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Connection, Engine

DEFAULT_MAX_AGE = 300.0


def connect_autocommit(engine: Engine) -> Connection:
    """A connection from ``engine``'s pool, in autocommit on Postgres (as
    myapp.db_reads.autocommit_begin does for sessions; the pool's checkin,
    autocommit_off, undoes it when the connection goes back)."""
    conn = engine.connect()
    if conn.dialect.name == "postgresql":
        conn.connection.dbapi_connection.autocommit = True  # type: ignore[union-attr]
    return conn


@dataclass
class _Kept:
    conn: Connection
    since: float
    busy: bool = False


class HeldReads:
    """The connections this process keeps for anonymous reads."""

    def __init__(self, max_age: float, on_reuse: Callable[[Connection], None] | None = None):
        self.max_age = max_age
        self.on_reuse = on_reuse
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._kept: dict[Engine, _Kept] = {}

    def _mine(self) -> dict[Engine, _Kept]:
        """(Under the lock.) A forked child starts with nothing kept: its
        parent's connections are not its to use, nor to close."""
        if self._pid != os.getpid():
            self._pid, self._kept = os.getpid(), {}
        return self._kept

    def connect(self, engine: Engine) -> Connection:
        """A connection to ``engine`` in autocommit: the kept one when free."""
        stale = reused = None
        with self._lock:
            kept = self._mine().get(engine)
            if kept is not None and not kept.busy:
                if self._fit(kept):
                    kept.busy = True
                    reused = kept.conn
                else:
                    stale = self._kept.pop(engine).conn
        if stale is not None:
            self._close(stale)
        if reused is not None:
            if self.on_reuse is not None:
                self.on_reuse(reused)
            return reused
        conn = connect_autocommit(engine)
        with self._lock:
            if engine not in self._mine():  # else another thread's is kept: this one goes back
                self._kept[engine] = _Kept(conn, time.monotonic(), busy=True)
        return conn

    def release(self, conn: Connection) -> None:
        """A request is done with ``conn``: the kept one is kept (unless
        unfit), any other goes back to the pool."""
        try:
            if conn.in_transaction():
                conn.rollback()  # SQLAlchemy's autobegun one; nothing on the server
        except Exception:
            conn.invalidate()
        with self._lock:
            kept = self._mine().get(conn.engine)
            if kept is not None and kept.conn is conn:
                kept.busy = False
                if self._fit(kept):
                    return
                del self._kept[conn.engine]
        self._close(conn)

    def give_back(self) -> None:
        """Give the idle kept connections back to their pools (a request's
        Session may need the pool's last one)."""
        with self._lock:
            idle = [engine for engine, kept in self._mine().items() if not kept.busy]
            conns = [self._kept.pop(engine).conn for engine in idle]
        for conn in conns:
            self._close(conn)

    def _fit(self, kept: _Kept) -> bool:
        conn = kept.conn
        return (
            not (conn.invalidated or conn.closed) and time.monotonic() - kept.since < self.max_age
        )

    @staticmethod
    def _close(conn: Connection) -> None:
        with contextlib.suppress(Exception):  # already dead: the pool discards it
            conn.close()
