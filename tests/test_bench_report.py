"""bench/report.py: the tables the benchmark report derives from its rows."""

from __future__ import annotations

from typing import Any

from bench import report


def row(scenario: str, articles: int, p50: float, cache: bool = False, **kw: Any) -> dict[str, Any]:
    replicas = kw.pop("replicas", 3)
    return {
        "suite": "scale",
        "scenario": scenario,
        "articles": articles,
        "topology": f"conduit, {replicas} replica(s), cache {'on' if cache else 'off'}",
        "replicas": replicas,
        "cache": cache,
        "p50_ms": p50,
        "rps": 1000 / p50,
        "queries_per_request": 2.0,
    } | kw


def test_each_scenario_and_topology_is_compared_across_sizes() -> None:
    rows = [
        row("home page", 10_000, 10.0),
        row("home page", 1_000_000, 12.0),
        row("home page", 10_000, 4.0, cache=True),
        row("home page", 1_000_000, 4.4, cache=True),
        row("feed", 10_000, 20.0),  # no run at 1M: no line
        {"suite": "replicas", "scenario": "home page", "articles": 10_000, "p50_ms": 1.0},
    ]
    table = report.size_ratios(rows)
    assert table is not None
    lines = table.splitlines()
    assert "p50 ms at 10,000 | p50 ms at 1,000,000" in lines[0]
    assert len(lines) == 4
    assert "| home page | conduit, 3 replica(s), cache off | 10.00 | 12.00 | 1.20x |" in lines[2]
    assert "| 4.00 | 4.40 | 1.10x |" in lines[3]
    assert "| 2.00 |" in lines[2]


def test_one_size_makes_no_table() -> None:
    assert report.size_ratios([row("home page", 10_000, 10.0)]) is None
