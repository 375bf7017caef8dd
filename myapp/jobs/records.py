"""The ``jobs`` table: what a caller polls while a job runs.

Two kinds of writes, kept apart on purpose:

* the job's **outcome** (``succeeded`` with its result) is written by the
  job's own transaction, so it commits together with the job's effects:
  a job is never "succeeded" without its effects, nor the other way round;
* its **progress** and **state changes** (running, retrying, failed) are
  written in short transactions of their own, so a poller sees them while
  the job's transaction is still open (or after it was rolled back). The
  job's transaction never touches its row before the end, so these short
  transactions never wait for it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from pyramid.registry import Registry
from pyramid.request import Request
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from myapp.models.job import (
    ACTIVE,
    FAILED,
    QUEUED,
    RETRYING,
    RUNNING,
    SUCCEEDED,
    Job,
)
from myapp.models.meta import utcnow
from myapp.services.public import timestamp

log = logging.getLogger(__name__)

ERROR_MAX = 2000
# What a job's owner is told; the stored error (for operators) may name
# hosts or SQL that are none of their business.
PUBLIC_ERRORS = {
    RETRYING: "a temporary problem; retrying shortly",
    FAILED: "could not be completed",
}


@contextmanager
def short_transaction(registry: Registry) -> Iterator[Session]:
    """A session of its own that commits at once (outside any job's transaction)."""
    with registry["dbsession_factory"]() as session, session.begin():
        yield session


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:ERROR_MAX]


def create(db: Session, job_id: str, kind: str, owner_id: int | None, args: list[Any]) -> Job:
    """A queued job, in the caller's transaction (gone if that rolls back)."""
    now = utcnow()
    job = Job(
        id=job_id,
        kind=kind,
        owner_id=owner_id,
        status=QUEUED,
        progress=0,
        attempts=0,
        args=args,
        created_at=now,
        updated_at=now,
    )
    db.add(job)
    return job


def start(registry: Registry, job_id: str, kind: str, args: list[Any]) -> bool:
    """Mark an attempt as running; False if the job already succeeded.

    A redelivered message (the worker died after the job's commit but before
    the broker heard the acknowledgement) then does nothing. Jobs sent by
    Celery beat have no row yet: it is made here.
    """
    now = utcnow()
    with short_transaction(registry) as db:
        job = db.get(Job, job_id)
        if job is None:
            job = create(db, job_id, kind, None, args)
        elif job.status not in ACTIVE and job.status != FAILED:
            return False
        job.status = RUNNING
        job.attempts += 1
        job.started_at = job.started_at or now
        job.updated_at = now
    return True


def progress(registry: Registry, job_id: str, percent: int) -> None:
    """Record progress (0-99: 100 comes with the result, at commit)."""
    percent = max(0, min(99, int(percent)))
    with short_transaction(registry) as db:
        db.execute(
            update(Job)
            .where(Job.id == job_id, Job.progress < percent)
            .values(progress=percent, updated_at=utcnow())
        )


def succeed(db: Session, job_id: str, result: dict[str, Any] | None) -> None:
    """The outcome, in the job's own transaction (commits with its effects)."""
    now = utcnow()
    db.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(
            status=SUCCEEDED,
            progress=100,
            result=result,
            error=None,
            finished_at=now,
            updated_at=now,
        )
    )


def _set_state(registry: Registry, job_id: str, **values: Any) -> None:
    try:
        with short_transaction(registry) as db:
            db.execute(update(Job).where(Job.id == job_id).values(updated_at=utcnow(), **values))
    except Exception:
        # Only bookkeeping: the broker (or the runner) still has the job.
        log.exception("could not record the state of job %s", job_id)


def retrying(registry: Registry, job_id: str, exc: BaseException) -> None:
    _set_state(registry, job_id, status=RETRYING, error=describe(exc))


def failed(registry: Registry, job_id: str, exc: BaseException) -> None:
    _set_state(registry, job_id, status=FAILED, error=describe(exc), finished_at=utcnow())


def not_sent(registry: Registry, job_id: str, exc: BaseException) -> None:
    """The commit happened but the broker refused the message: still queued
    (the periodic requeue sends it again), with the reason for operators."""
    _set_state(registry, job_id, error="not sent yet: " + describe(exc))


# -- reading -----------------------------------------------------------------


def owned(db: Session, job_id: str, owner_id: int, kind: str | None = None) -> Job | None:
    """``owner_id``'s job ``job_id`` (of ``kind``), or None: others' jobs do not exist."""
    query = select(Job).where(Job.id == job_id, Job.owner_id == owner_id)
    if kind is not None:
        query = query.where(Job.kind == kind)
    return db.scalar(query)


def latest(db: Session, owner_id: int, kind: str, limit: int = 10) -> list[Job]:
    query = (
        select(Job)
        .where(Job.owner_id == owner_id, Job.kind == kind)
        .order_by(Job.created_at.desc(), Job.id)
        .limit(limit)
    )
    return list(db.scalars(query))


def _timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    return timestamp(value)


def job_data(
    request: Request,
    job: Job,
    status_route: str = "api.job",
    download_route: str = "api.export_download",
) -> dict[str, Any]:
    """The JSON a page or client polls (see myapp/api/jobs-openapi.yml); the
    pages pass their own routes (``{id}`` in the pattern) for the two URLs."""
    data: dict[str, Any] = {
        "id": job.id,
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
        "done": job.status not in ACTIVE,
        "error": PUBLIC_ERRORS.get(job.status),
        "createdAt": _timestamp(job.created_at),
        "startedAt": _timestamp(job.started_at),
        "finishedAt": _timestamp(job.finished_at),
        "statusUrl": request.route_path(status_route, id=job.id),
    }
    result = job.result or {}
    if job.status == SUCCEEDED and result.get("file"):
        data["downloadUrl"] = request.route_path(download_route, id=job.id)
        data["size"] = result.get("size")
        data["counts"] = result.get("counts")
        data["expiresAt"] = result.get("expiresAt")
    return data
