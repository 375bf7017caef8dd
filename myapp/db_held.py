"""Persistent read connections: one per worker thread and engine, kept
between anonymous reads (Postgres).

An anonymous read (myapp.db_reads.CoreReads) used to check a connection out
of the pool at its first statement and return it at the end: with the
pool's events (statement counts, autocommit reset) and the Connection
object, ~7% of an uncached list page's CPU, for a connection that the next
request of the same worker takes straight back. So each worker thread keeps
it, as Django does with ``CONN_MAX_AGE``:

* kept at most ``db.read_connection_max_age`` seconds (default 300; 0
  turns this off: a checkout per request, as before), so a replaced
  server or a changed setting reaches every worker soon, as
  ``pool_recycle`` would; off with ``pool_pre_ping`` (which asks for a
  check at every checkout) and behind PgBouncer (no autocommit reads);
* in autocommit for its whole life (no transaction, no lock, no snapshot
  is held between requests); SQLAlchemy's own transaction around a
  statement is ended when each request is done (no round trip);
* dropped when SQLAlchemy invalidated it (a dead server connection): the
  request that met the error is retried (myapp.db: each request counts its
  statements afresh, through ``on_reuse``), the next one connects anew;
* given back to the pool when its thread makes a request's Session (a
  write, a logged-in read): a thread holds one connection at a time, so
  a pool of any size is never starved by the connections kept;
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

from sqlalchemy.engine import Connection, Engine

DEFAULT_MAX_AGE = 300.0


class HeldReads:
    """The connections this process's threads keep for anonymous reads."""

    def __init__(self, max_age: float, on_reuse: Callable[[Connection], None] | None = None):
        self.max_age = max_age
        self.on_reuse = on_reuse
        self._local = threading.local()

    def _held(self) -> dict[Engine, tuple[Connection, float]]:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            # New thread, or a forked child: nothing held (the parent's
            # connections are not ours to use, nor to close).
            local.pid, local.held, local.busy = os.getpid(), {}, set()
        held: dict[Engine, tuple[Connection, float]] = local.held
        return held

    def connect(self, engine: Engine) -> Connection:
        """The thread's connection to ``engine`` in autocommit, kept or new."""
        held = self._held()
        now = time.monotonic()
        entry = held.get(engine)
        if entry is not None:
            conn, since = entry
            if not (conn.invalidated or conn.closed) and now - since < self.max_age:
                if self.on_reuse is not None:
                    self.on_reuse(conn)
                self._local.busy.add(engine)
                return conn
            self._drop(held, engine)
        conn = engine.connect()
        # As myapp.db_reads.autocommit_begin does for sessions; the pool's
        # checkin (autocommit_off) undoes it when the connection is dropped.
        conn.connection.dbapi_connection.autocommit = True  # type: ignore[union-attr]
        held[engine] = (conn, now)
        self._local.busy.add(engine)
        return conn

    def release(self, conn: Connection) -> None:
        """A request is done with ``conn``: kept for the next, unless unfit."""
        held = self._held()
        self._local.busy.discard(conn.engine)
        try:
            if conn.in_transaction():
                conn.rollback()  # SQLAlchemy's autobegun one; nothing on the server
        except Exception:
            conn.invalidate()
        if conn.invalidated:
            self._drop(held, conn.engine)

    def give_back(self) -> None:
        """Give this thread's idle kept connections back to their pools (one
        a request is reading through stays with it)."""
        held = self._held()
        for engine in [engine for engine in held if engine not in self._local.busy]:
            self._drop(held, engine)

    @staticmethod
    def _drop(held: dict[Engine, tuple[Connection, float]], engine: Engine) -> None:
        entry = held.pop(engine, None)
        if entry is not None:
            with contextlib.suppress(Exception):  # already dead: the pool discards it
                entry[0].close()
