"""Periodic jobs (Celery beat; the embedded runner's timer without a broker).

* ``warm_caches`` (``jobs.warm_every_seconds``, 60): recount the popular
  tags and fill the hot list pages (home page, API default, top tags), so
  readers rarely pay for a miss.
* ``clean_exports`` (``jobs.clean_every_seconds``, 3600): remove exports
  older than ``jobs.export_ttl_seconds`` (the job turns ``expired``), stray
  files, and finished job rows older than ``jobs.keep_seconds`` (7 days).
* ``requeue_jobs`` (``jobs.requeue_every_seconds``, 300): a job still
  ``queued`` after ``jobs.requeue_after_seconds`` (600) lost its message (the
  broker was down at commit, or the embedded process restarted): send it
  again. Jobs are idempotent, so a job that was merely slow is not harmed.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from pyramid.request import Request
from sqlalchemy import delete, select

from myapp.jobs import export
from myapp.models.job import EXPIRED, FAILED, QUEUED, SUCCEEDED, Job
from myapp.models.meta import utcnow
from myapp.services import public
from myapp.services.articles import Filters
from myapp.tasks import job, send_after_commit

# The pages show 10 articles a page, the API 20 by default.
HOT_PAGE_SIZES = (10, 20)
HOT_TAGS = 5
STRAY_SECONDS = 86400
REQUEUE_BATCH = 500


@job(name="conduit.warm_caches", every=("jobs.warm_every_seconds", 60))
def warm_caches(request: Request) -> dict[str, Any]:
    db, cache = request.dbsession, request.cache
    if not cache.enabled:
        return {"tags": 0, "pages": 0}
    tags = public.refresh_tags(db, cache)
    pages = 0
    for size in HOT_PAGE_SIZES:
        public.article_page(db, cache, Filters(), size, 0)
        pages += 1
    for tag in tags[:HOT_TAGS]:
        public.article_page(db, cache, Filters(tag=tag), HOT_PAGE_SIZES[0], 0)
        pages += 1
    return {"tags": len(tags), "pages": pages}


@job(name="conduit.clean_exports", every=("jobs.clean_every_seconds", 3600))
def clean_exports(request: Request) -> dict[str, Any]:
    db, settings = request.dbsession, request.registry.settings
    now = utcnow()
    expired = list(
        db.scalars(
            select(Job).where(
                Job.kind == export.KIND,
                Job.status == SUCCEEDED,
                Job.finished_at < now - export.ttl(settings),
            )
        )
    )
    for item in expired:
        export.export_path(settings, item.id).unlink(missing_ok=True)
        item.status = EXPIRED
        item.updated_at = now
    keep = timedelta(seconds=int(settings.get("jobs.keep_seconds", 7 * 86400)))
    removed = db.execute(
        delete(Job).where(Job.status.in_((SUCCEEDED, FAILED, EXPIRED)), Job.updated_at < now - keep)
    ).rowcount
    # Files whose job row is gone (its owner deleted their account), and
    # partial files a crashed export left behind.
    folder = export.exports_dir(settings)
    strays = 0
    if folder.is_dir():
        live = set(
            db.scalars(select(Job.id).where(Job.kind == export.KIND, Job.status == SUCCEEDED))
        )
        cutoff = time.time() - STRAY_SECONDS
        for path in folder.iterdir():
            job_id = path.name.lstrip(".").split(".")[0]
            if job_id not in live and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                strays += 1
    return {"expired": len(expired), "rows": removed, "strays": strays}


@job(name="conduit.requeue_jobs", every=("jobs.requeue_every_seconds", 300))
def requeue_jobs(request: Request) -> dict[str, Any]:
    db, settings = request.dbsession, request.registry.settings
    now = utcnow()
    after = timedelta(seconds=int(settings.get("jobs.requeue_after_seconds", 600)))
    stale = list(
        db.scalars(
            select(Job)
            .where(Job.status == QUEUED, Job.updated_at < now - after)
            .order_by(Job.updated_at)
            .limit(REQUEUE_BATCH)
        )
    )
    for item in stale:
        item.updated_at = now  # not again before another full interval
        send_after_commit(request, item.kind, item.id, list(item.args or []))
    return {"requeued": len(stale)}
