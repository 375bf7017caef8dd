"""The open-loop client behind bench/jobs.py: requests leave on schedule and
are timed from it, so a server stall cannot hide (coordinated omission)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.paced import paced, percentile, summary


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else delayed ACKs add 40 ms per request
    stall = 0.3  # seconds, on the first request only
    seen = 0

    def do_POST(self) -> None:
        Handler.seen += 1
        if Handler.seen == 1:
            time.sleep(self.stall)
        self.send_response(202)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    Handler.seen = 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (
        50,
        99,
        100,
    )
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 99) == 0.0


def test_a_stall_delays_the_requests_due_during_it(server: int) -> None:
    # One connection: the requests due while the first one stalls leave late,
    # and their latency counts from when they were due, not from when they left.
    samples = paced(server, lambda i: ("POST", "/", {}), rate=50, seconds=1, threads=1)
    assert len(samples) == 50
    assert all(s.status == 202 for s in samples)
    # Due in the stall's first half: they left at least 0.15 s late.
    early = [s for s in samples[1:] if s.due < samples[0].finished - 0.15]
    assert len(early) >= 5
    assert all(s.lag_ms > 100 and s.latency_ms > s.service_ms + 100 for s in early)
    result = summary(samples, 50)
    assert result["count"] == 50 and result["errors"] == 0
    assert result["p99_ms"] >= 250  # the stall is in the tail, not averaged away
    assert result["p50_ms"] < 100


def test_requests_leave_on_schedule_when_the_server_keeps_up(server: int) -> None:
    Handler.seen = 1  # no stall
    samples = paced(server, lambda i: ("POST", "/", {}), rate=100, seconds=1)
    starts = sorted(s.due for s in samples)
    assert len(samples) == 100
    assert starts[-1] - starts[0] == pytest.approx(0.99, abs=0.01)
    assert summary(samples, 100)["lag_p50_ms"] < 20
