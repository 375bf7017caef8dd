"""CPU time by process group, from /proc, around a measurement.

Where a request's CPU goes on a box that runs everything: the gunicorn
workers, Postgres, Nginx, Redis, the load generator. Linux only; elsewhere
(or without /proc) the groups come back empty.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

# Process names (/proc/<pid>/stat's comm) counted in each group.
GROUPS = {
    "gunicorn": ("gunicorn",),
    "postgres": ("postgres",),
    "nginx": ("nginx",),
    "redis": ("redis-server",),
    "pgbouncer": ("pgbouncer",),
    "wrk": ("wrk",),
}
PROC = Path("/proc")


def snapshot() -> Counter[str]:
    """CPU seconds (user + system) so far of every live process, by group."""
    ticks: Counter[str] = Counter()
    if not PROC.is_dir():
        return ticks
    hz = os.sysconf("SC_CLK_TCK")
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        for group, names in GROUPS.items():
            if name in names:
                # utime + stime, and cutime + cstime: the children it has
                # reaped (a gunicorn worker recycled by max_requests, a
                # Postgres backend whose connection closed), which would
                # otherwise vanish from the sum when they exit mid-run.
                ticks[group] += sum(int(value) for value in fields[11:15]) / hz
    return ticks


def per_request(before: Counter[str], after: Counter[str], requests: int) -> dict[str, float]:
    """Milliseconds of CPU per request by group, between two snapshots.

    A process that exited between them counts through its parent (which
    reaped it: gunicorn's master, the postmaster), as long as the parent
    is in the group; one that started counts from zero.
    """
    if requests <= 0:
        return {}
    return {
        group: round(max(after[group] - before[group], 0.0) * 1000 / requests, 3)
        for group in GROUPS
        if group in after
    }
