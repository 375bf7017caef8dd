"""Turn a bench/results/<run>.jsonl into <run>.md and PNG plots.

.venv/bin/python -m bench.report bench/results/<run>.jsonl
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    """matplotlib (the ``bench`` extra), imported only to draw: the tables
    need nothing beyond the standard library."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


COLUMNS = [
    ("scenario", "scenario", "{}"),
    ("topology", "topology", "{}"),
    ("articles", "articles", "{:,}"),
    ("connections", "conc.", "{}"),
    ("rps", "req/s", "{:.1f}"),
    ("p50_ms", "p50 ms", "{:.2f}"),
    ("p95_ms", "p95 ms", "{:.2f}"),
    ("p99_ms", "p99 ms", "{:.2f}"),
    ("errors", "errors", "{}"),
    ("queries_per_request", "SQL/req", "{:.2f}"),
    ("cache_hit_ratio", "cache hits", "{:.0%}"),
    ("requests_per_replica", "per replica", "{}"),
    ("cpu_ms_per_request", "CPU ms/req: app / pg / nginx", "{}"),
]


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def cell(row: dict[str, Any], key: str, fmt: str) -> str:
    value = row.get(key)
    if value is None:
        return "-"
    if key == "requests_per_replica":
        return " / ".join(f"{int(v)}" for v in value.values()) or "-"
    if key == "cpu_ms_per_request":
        return " / ".join(f"{value.get(g, 0):.2f}" for g in ("gunicorn", "postgres", "nginx"))
    return fmt.format(value)


def table(rows: list[dict[str, Any]]) -> str:
    head = "| " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    rule = "|" + "---|" * len(COLUMNS)
    body = ["| " + " | ".join(cell(r, k, f) for k, _, f in COLUMNS) + " |" for r in rows]
    return "\n".join([head, rule, *body])


def ceiling_ratios(rows: list[dict[str, Any]]) -> str | None:
    """Each replicas-suite run as a share of the bare WSGI hello of its shape
    (the latest one before it), and the median share where there were rounds."""
    hello: dict[tuple[int, int], float] = {}
    shares: dict[tuple[int, int, str], list[float]] = defaultdict(list)
    lines = [
        "| replicas x workers | scenario | req/s | bare WSGI req/s | share |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        shape = (r.get("replicas"), r.get("workers"))
        if r["suite"] != "replicas":
            continue
        if r["scenario"] == "bare WSGI hello":
            hello[shape] = r["rps"]
        elif ceiling := hello.get(shape):
            shares[(*shape, r["scenario"])].append(r["rps"] / ceiling)
            lines.append(
                f"| {shape[0]} x {shape[1]} | {r['scenario']} | {r['rps']:,.1f} "
                f"| {ceiling:,.1f} | {r['rps'] / ceiling:.1%} |"
            )
    if not shares:
        return None
    if any(len(values) > 1 for values in shares.values()):
        lines += ["", "| replicas x workers | scenario | rounds | median share | min - max |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for (replicas, workers, scenario), values in shares.items():
            lines.append(
                f"| {replicas} x {workers} | {scenario} | {len(values)} "
                f"| {statistics.median(values):.1%} | {min(values):.1%} - {max(values):.1%} |"
            )
    return "\n".join(lines)


def size_ratios(rows: list[dict[str, Any]]) -> str | None:
    """The scale suite across dataset sizes: each scenario and topology's p50
    at the largest size against the smallest (issue 7: at most 1.3x)."""
    rows = [r for r in rows if r["suite"] == "scale"]
    sizes = sorted({r["articles"] for r in rows})
    if len(sizes) < 2:
        return None
    small, large = sizes[0], sizes[-1]
    by_run = {(r["scenario"], r["topology"], r["articles"]): r for r in rows}
    lines = [
        f"| scenario | topology | p50 ms at {small:,} | p50 ms at {large:,} | ratio "
        f"| req/s at {small:,} / {large:,} | SQL/req at {large:,} |",
        "|---|---|---|---|---|---|---|",
    ]
    for scenario, topology in dict.fromkeys((r["scenario"], r["topology"]) for r in rows):
        first, last = (
            by_run.get((scenario, topology, small)),
            by_run.get((scenario, topology, large)),
        )
        if first is None or last is None or not first.get("p50_ms"):
            continue
        sql = last.get("queries_per_request")
        lines.append(
            f"| {scenario} | {topology} | {first['p50_ms']:.2f} | {last['p50_ms']:.2f} "
            f"| {last['p50_ms'] / first['p50_ms']:.2f}x | {first['rps']:,.1f} / {last['rps']:,.1f} "
            f"| {'-' if sql is None else f'{sql:.2f}'} |"
        )
    return "\n".join(lines)


def plot_concurrency(rows: list[dict[str, Any]], out: Path) -> Path | None:
    rows = [r for r in rows if r["suite"] == "concurrency"]
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [r["connections"] for r in rows]
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        ax.plot(xs, [r[key] for r in rows], marker="o", label=key.replace("_ms", ""))
    ax.set_xscale("log", base=2)
    ax.set(xlabel="concurrent connections", ylabel="latency (ms)",
           title="GET /api/articles?limit=20: latency vs concurrency")  # fmt: skip
    ax.legend()
    path = out.with_name(out.stem + "-latency-vs-concurrency.png")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_replicas(rows: list[dict[str, Any]], out: Path) -> Path | None:
    rows = [r for r in rows if r["suite"] == "replicas"]
    if not rows:
        return None
    series: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for r in rows:
        series[r["scenario"]].append((f"{r['replicas']}x{r['workers']}", r["rps"]))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, points in series.items():
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
    # Log scale: Nginx's micro-cache is ten times the rest.
    ax.set_yscale("log")
    ax.set(xlabel="replicas x workers", ylabel="requests/s (log)", title="Throughput vs replicas")
    ax.legend(fontsize=7)
    path = out.with_name(out.stem + "-throughput-vs-replicas.png")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_sizes(rows: list[dict[str, Any]], out: Path) -> Path | None:
    # The database's own cost: app cache off, the largest cluster.
    rows = [r for r in rows if r["suite"] == "scale" and not r.get("cache", False)]
    most = max((r.get("replicas", 0) for r in rows), default=0)
    rows = [r for r in rows if r.get("replicas", 0) == most]
    sizes = sorted({r["articles"] for r in rows})
    if len(sizes) < 2:
        return None
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(sizes)
    for i, size in enumerate(sizes):
        p50 = {r["scenario"]: r["p50_ms"] for r in rows if r["articles"] == size}
        xs = [j + i * width for j in range(len(scenarios))]
        ax.bar(xs, [p50.get(s, 0) for s in scenarios], width, label=f"{size:,} articles")
    ax.set_xticks([j + width / 2 for j in range(len(scenarios))], scenarios, rotation=20,
                  fontsize=7, ha="right")  # fmt: skip
    ax.set(ylabel="p50 latency (ms)", title="Hot reads, cache off: dataset size")
    ax.legend()
    path = out.with_name(out.stem + "-sizes.png")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(jsonl: Path) -> Path:
    rows = load(jsonl)
    out = jsonl.with_suffix(".md")
    parts = [f"# Benchmark run {jsonl.stem}", "", f"Raw rows: `{jsonl.name}`.", ""]
    for suite in dict.fromkeys(r["suite"] for r in rows):
        parts += [f"## {suite}", "", table([r for r in rows if r["suite"] == suite]), ""]
    ratios = ceiling_ratios(rows)
    if ratios:
        parts += ["## Share of the bare WSGI ceiling, same shape", "", ratios, ""]
    sizes = size_ratios(rows)
    if sizes:
        parts += ["## Dataset size: the largest against the smallest", "", sizes, ""]
    for plot in (plot_concurrency(rows, out), plot_replicas(rows, out), plot_sizes(rows, out)):
        if plot:
            parts += [f"![{plot.stem}]({plot.name})", ""]
    out.write_text("\n".join(parts))
    print(f"report: {out}")
    return out


if __name__ == "__main__":
    write_report(Path(sys.argv[1]))
