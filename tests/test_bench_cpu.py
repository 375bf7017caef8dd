"""bench/cpu.py: CPU per request by process group, read from /proc."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from bench import cpu
from bench.report import ceiling_ratios, cell


@pytest.mark.skipif(not cpu.PROC.is_dir(), reason="needs Linux /proc")
def test_a_snapshot_sees_the_running_services() -> None:
    # The test database's Postgres runs here (its backends serve this suite).
    assert cpu.snapshot()["postgres"] > 0


def test_per_request_is_the_delta_over_the_requests() -> None:
    before = Counter({"gunicorn": 10.0, "postgres": 2.0, "nginx": 1.0})
    after = Counter({"gunicorn": 11.5, "postgres": 2.25, "nginx": 1.1, "wrk": 0.05})
    assert cpu.per_request(before, after, 1000) == {
        "gunicorn": 1.5,
        "postgres": 0.25,
        "nginx": 0.1,
        "wrk": 0.05,
    }
    assert cpu.per_request(before, after, 0) == {}


def test_the_report_shows_app_database_and_proxy() -> None:
    row = {"cpu_ms_per_request": {"gunicorn": 1.5, "postgres": 0.25, "nginx": 0.1}}
    assert cell(row, "cpu_ms_per_request", "{}") == "1.50 / 0.25 / 0.10"
    assert cell({}, "cpu_ms_per_request", "{}") == "-"


def test_each_run_is_a_share_of_the_ceiling_of_its_own_shape() -> None:
    def run(replicas: int, workers: int, scenario: str, rps: float) -> dict[str, object]:
        return {"suite": "replicas", "replicas": replicas, "workers": workers,
                "scenario": scenario, "rps": rps}  # fmt: skip

    rows = [
        run(3, 2, "bare WSGI hello", 4000.0),
        run(3, 2, "list (app cache off)", 800.0),
        run(3, 1, "bare WSGI hello", 5000.0),
        run(3, 1, "list (app cache off)", 1250.0),
        run(2, 2, "list (app cache off)", 900.0),  # no ceiling measured: no share
    ]
    table = ceiling_ratios(rows)
    assert table is not None
    lines = table.splitlines()[2:]
    assert lines == [
        "| 3 x 2 | list (app cache off) | 800.0 | 4,000.0 | 20.0% |",
        "| 3 x 1 | list (app cache off) | 1,250.0 | 5,000.0 | 25.0% |",
    ]
    assert ceiling_ratios([run(3, 2, "bare WSGI hello", 1.0)]) is None
    # Rounds: each against the hello just before it, then the median of the shares.
    rounds = [
        run(1, 2, "bare WSGI hello", 1000.0),
        run(1, 2, "list", 200.0),
        run(1, 2, "bare WSGI hello", 2000.0),
        run(1, 2, "list", 500.0),
        run(1, 2, "bare WSGI hello", 1000.0),
        run(1, 2, "list", 300.0),
    ]
    table = ceiling_ratios(rounds)
    assert table is not None
    assert "| 1 x 2 | list | 500.0 | 2,000.0 | 25.0% |" in table.splitlines()
    assert table.splitlines()[-1] == "| 1 x 2 | list | 3 | 25.0% | 20.0% - 30.0% |"


@contextmanager
def counting_self() -> Iterator[None]:
    """cpu.GROUPS with one more group, "self": this process, by its name."""
    own = (cpu.PROC / "self" / "stat").read_text()
    name = own[own.index("(") + 1 : own.rindex(")")]
    groups = cpu.GROUPS
    cpu.GROUPS = {**groups, "self": (name,)}
    try:
        yield
    finally:
        cpu.GROUPS = groups


@pytest.mark.skipif(not cpu.PROC.is_dir(), reason="needs Linux /proc")
def test_a_busy_process_is_counted() -> None:
    """Our own CPU shows up under a group when the group names us."""
    with counting_self():
        before = cpu.snapshot()
        end = time.process_time() + 0.2
        while time.process_time() < end:
            pass
        spent = cpu.snapshot()["self"] - before["self"]
    assert spent >= 0.1


@pytest.mark.skipif(not cpu.PROC.is_dir(), reason="needs Linux /proc")
def test_a_child_that_exits_stays_counted_through_its_parent() -> None:
    """A recycled gunicorn worker's CPU: once reaped, it is the parent's cutime."""
    with counting_self():
        before = cpu.snapshot()
        loop = "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"
        subprocess.run(["sh", "-c", loop], check=True)
        spent = cpu.snapshot()["self"] - before["self"]
    assert spent >= 0.05
