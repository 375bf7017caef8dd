"""The embedded default: jobs run in a thread of the web process.

Without a broker (``make run``) jobs still run outside the request and only
after its commit: the after-commit hook hands them to this runner, whose
thread runs the very attempts a Celery worker would (myapp.tasks
``run_attempt``: same request, same transaction, same job row), retries
transient errors with the same back-off, and starts the periodic jobs on
their intervals. What it cannot give: surviving a restart (the periodic
requeue sends jobs still queued then), time limits (a thread cannot be
killed), or more than one job at a time.

A session factory bound to a single connection (the test suite's rolled-back
transaction) cannot be shared with another thread, so jobs then run in the
committing thread, right after the commit ("inline").
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from pyramid.registry import Registry
from sqlalchemy.engine import Connection

from myapp.jobs import records
from myapp.tasks import TRANSIENT, RetryPolicy, run_attempt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Item:
    name: str
    job_id: str
    args: list[Any]
    retries: int = 0
    periodic: float = 0.0  # seconds between runs of a periodic job


class ThreadRunner:
    def __init__(self, registry: Registry, policy: RetryPolicy):
        self.registry = registry
        self.policy = policy
        self._heap: list[tuple[float, int, Item]] = []
        self._counter = itertools.count()
        self._wakeup = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._busy = False
        self._stopping = False

    @property
    def inline(self) -> bool:
        if self.registry.settings.get("jobs.runner") == "inline":
            return True
        bind = self.registry["dbsession_factory"].kw.get("bind")
        return isinstance(bind, Connection)

    def send(self, name: str, job_id: str, args: list[Any]) -> None:
        item = Item(name, job_id, args)
        if self.inline:
            self._run(item, inline=True)
            return
        self._push(0.0, item)

    def _push(self, delay: float, item: Item) -> None:
        with self._wakeup:
            self._start()
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._counter), item))
            self._wakeup.notify()

    def _start(self) -> None:
        """Start the thread in this process (again after a fork: threads
        don't survive one, and what the parent had queued is the parent's)."""
        if self._thread is not None and self._pid == os.getpid():
            return
        self._heap = []
        self._pid = os.getpid()
        now = time.monotonic()
        for spec in self.registry["jobs"].values():
            if spec.every:
                interval = float(self.registry.settings.get(spec.every[0], spec.every[1]))
                if interval > 0:
                    item = Item(spec.name, "", [], periodic=interval)
                    heapq.heappush(self._heap, (now + interval, next(self._counter), item))
        self._thread = threading.Thread(target=self._loop, name="conduit-jobs", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._wakeup:
                while not self._stopping and (
                    not self._heap or self._heap[0][0] > time.monotonic()
                ):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._wakeup.wait(timeout)
                if self._stopping:
                    return
                _, _, item = heapq.heappop(self._heap)
                self._busy = True
            try:
                if item.periodic:
                    self._push(item.periodic, item)
                    item = Item(item.name, str(uuid.uuid4()), [])
                self._run(item)
            finally:
                with self._wakeup:
                    self._busy = False
                    self._wakeup.notify_all()

    def _run(self, item: Item, inline: bool = False) -> None:
        spec = self.registry["jobs"][item.name]
        try:
            run_attempt(self.registry, item.name, item.job_id, spec.func, item.args)
        except TRANSIENT as exc:
            if inline or item.retries >= self.policy.max_retries:
                log.exception("job %s (%s) failed", item.job_id, item.name)
                records.failed(self.registry, item.job_id, exc)
                return
            countdown = self.policy.countdown(item.retries)
            log.warning(
                "job %s (%s) will retry in %.1fs: %r", item.job_id, item.name, countdown, exc
            )
            records.retrying(self.registry, item.job_id, exc)
            self._push(countdown, Item(item.name, item.job_id, item.args, item.retries + 1))
        except Exception as exc:
            log.exception("job %s (%s) failed", item.job_id, item.name)
            records.failed(self.registry, item.job_id, exc)

    # -- for tests and shutdown ---------------------------------------------------

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is running or due now; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._wakeup:
            while self._busy or (self._heap and self._heap[0][0] <= time.monotonic()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wakeup.wait(min(left, 0.05))
        return True

    def stop(self, timeout: float = 5.0) -> None:
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
