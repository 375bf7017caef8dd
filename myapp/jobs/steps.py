"""What a running job calls: commit its work so far, report progress, and
(in tests) slow itself down."""

from __future__ import annotations

import time

from pyramid.request import Request

from myapp.jobs import records


def checkpoint(request: Request) -> None:
    """Commit the job's work so far and go on in a new transaction: after a
    crash, a redelivery redoes only what came after the last checkpoint."""
    request.tm.commit()
    request.tm.begin()


def report_progress(request: Request, done: int, total: int) -> None:
    """Progress for pollers, written at once (and at most once per percent)."""
    percent = 99 if total <= 0 else min(99, done * 100 // total)
    if percent > getattr(request, "job_progress", -1):
        request.job_progress = percent
        records.progress(request.registry, request.job_id, percent)


def item_delay(request: Request) -> None:
    """``jobs.item_delay_seconds`` between items: slows jobs down on purpose
    (the crash tests need a job that is still running when they kill it)."""
    delay = float(request.registry.settings.get("jobs.item_delay_seconds", 0) or 0)
    if delay > 0:
        time.sleep(delay)
