"""An open-loop HTTP client: requests leave on a fixed schedule, whatever
the server does, and each is timed from its *scheduled* start.

wrk (closed loop) sends the next request only when a connection's previous
one has answered, so a slow server is simply asked less often and its
stalls hide in the averages ("coordinated omission"); at full speed it
measures the server's own saturation queue instead. Here request ``i`` is
due at ``t0 + i / rate``: if the server (or the client) is late, that
lateness is part of the request's latency, as it would be for a user.

Threads, each with a keep-alive connection of its own, take the next due
request in turn, so a slow answer delays nobody else's start while fewer
than ``threads`` are in flight. ``lag`` (actual start - scheduled start)
is reported too: it is the client's own overhead, which should stay well
under the latencies it measures.
"""

from __future__ import annotations

import http.client
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Sample:
    due: float  # perf_counter seconds
    started: float
    finished: float
    status: int  # 0: no answer (connection error, timeout)
    body: bytes

    @property
    def latency_ms(self) -> float:
        return (self.finished - self.due) * 1000

    @property
    def service_ms(self) -> float:
        return (self.finished - self.started) * 1000

    @property
    def lag_ms(self) -> float:
        return (self.started - self.due) * 1000


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; 0.0 if empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100), at least 1
    return ordered[int(rank) - 1]


def summary(samples: Sequence[Sample], rate: float, ok: int = 202) -> dict[str, Any]:
    """Latency (from the scheduled start) percentiles, errors, the client's lag."""
    latency = [s.latency_ms for s in samples]
    span = (max(s.finished for s in samples) - min(s.due for s in samples)) if samples else 0.0
    return {
        "rate": rate,
        "count": len(samples),
        "rps": len(samples) / span if span else 0.0,
        "errors": sum(s.status != ok for s in samples),
        "p50_ms": percentile(latency, 50),
        "p95_ms": percentile(latency, 95),
        "p99_ms": percentile(latency, 99),
        "max_ms": max(latency, default=0.0),
        "service_p99_ms": percentile([s.service_ms for s in samples], 99),
        "lag_p50_ms": percentile([s.lag_ms for s in samples], 50),
        "lag_p99_ms": percentile([s.lag_ms for s in samples], 99),
    }


Request = tuple[str, str, dict[str, str]]  # method, path, headers


def paced(
    port: int,
    request: Callable[[int], Request],
    rate: float,
    seconds: float,
    threads: int = 32,
    timeout: float = 10.0,
) -> list[Sample]:
    """``request(i)`` for i = 0.. sent to 127.0.0.1:``port`` at ``rate``/s for ``seconds``."""
    count = int(rate * seconds)
    samples: list[Sample | None] = [None] * count
    order = itertools.count()
    lock = threading.Lock()
    t0 = time.perf_counter() + 0.1  # every thread is started by then

    def run() -> None:
        conn: http.client.HTTPConnection | None = None
        while True:
            with lock:
                i = next(order)
            if i >= count:
                break
            due = t0 + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            method, path, headers = request(i)
            started = time.perf_counter()
            status, body = 0, b""
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
                conn.request(method, path, body=b"", headers=headers)
                response = conn.getresponse()
                body = response.read()
                status = response.status
                if response.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
            samples[i] = Sample(due, started, time.perf_counter(), status, body)
        if conn is not None:
            conn.close()

    workers = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return [s for s in samples if s is not None]
