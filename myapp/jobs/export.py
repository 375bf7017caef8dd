"""Export my data: a zip of the user's articles, comments and favourites.

The zip holds ``profile.json``, ``articles.json``, ``comments.json``,
``favorites.json`` and one Markdown file per article (``articles/<slug>.md``,
front matter + body). It is built under ``jobs.exports_dir`` (env
EXPORTS_DIR) as a temporary file and renamed into place, so a download never
sees half a zip and a second run simply replaces the first one's file.
Progress advances item by item. Exports older than
``jobs.export_ttl_seconds`` are removed by myapp.jobs.periodic.

The web process serves the file (only to its owner), so it and the workers
must share that folder (same machine, or a shared volume). :func:`start`
and :func:`download` are what the API (myapp/api/jobs.py) and the pages call.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from pyramid.request import Request
from pyramid.response import FileResponse, Response
from sqlalchemy import select

from myapp.jobs.steps import item_delay, report_progress
from myapp.models import Article, Comment, Favorite, User
from myapp.models.job import ACTIVE, SUCCEEDED, Job
from myapp.models.meta import utcnow
from myapp.services.errors import NotFound
from myapp.services.public import timestamp
from myapp.tasks import dispatch_job, job

KIND = "conduit.export"
DEFAULT_TTL = 86400


def exports_dir(settings: dict[str, Any]) -> Path:
    folder = settings.get("jobs.exports_dir") or Path(tempfile.gettempdir()) / "conduit-exports"
    return Path(folder)


def export_path(settings: dict[str, Any], job_id: str) -> Path:
    return exports_dir(settings) / f"{job_id}.zip"


def ttl(settings: dict[str, Any]) -> timedelta:
    return timedelta(seconds=int(settings.get("jobs.export_ttl_seconds", DEFAULT_TTL)))


def _markdown(article: dict[str, Any]) -> str:
    front = {k: article[k] for k in ("title", "description", "tagList", "createdAt", "updatedAt")}
    lines = ["---", *(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in front.items())]
    return "\n".join([*lines, "---", "", article["body"], ""])


def _collect(request: Request, user: User) -> dict[str, list[dict[str, Any]]]:
    db = request.dbsession
    articles = db.scalars(
        select(Article).where(Article.author_id == user.id).order_by(Article.created_at, Article.id)
    )
    comments = db.execute(
        select(Comment, Article.slug)
        .join(Article, Article.id == Comment.article_id)
        .where(Comment.author_id == user.id)
        .order_by(Comment.created_at, Comment.id)
    )
    favorites = db.execute(
        select(Article.slug, Article.title, Favorite.created_at)
        .join(Favorite, Favorite.article_id == Article.id)
        .where(Favorite.user_id == user.id)
        .order_by(Favorite.created_at, Article.id)
    )
    return {
        "articles": [
            {
                "slug": a.slug,
                "title": a.title,
                "description": a.description,
                "body": a.body,
                "tagList": list(a.tag_names),
                "favoritesCount": a.favorites_count,
                "createdAt": timestamp(a.created_at),
                "updatedAt": timestamp(a.updated_at),
            }
            for a in articles
        ],
        "comments": [
            {
                "id": c.id,
                "article": slug,
                "body": c.body,
                "createdAt": timestamp(c.created_at),
                "updatedAt": timestamp(c.updated_at),
            }
            for c, slug in comments
        ],
        "favorites": [
            {"article": slug, "title": title, "favoritedAt": timestamp(at)}
            for slug, title, at in favorites
        ],
    }


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2) + "\n"


@job(name=KIND, time_limit=1800)
def export_user_data(request: Request, user_id: int) -> dict[str, Any] | None:
    settings = request.registry.settings
    user = request.dbsession.get(User, user_id)
    if user is None:  # the account is gone, and its jobs with it
        return None
    data = _collect(request, user)
    profile = {
        "username": user.username,
        "email": user.email,
        "bio": user.bio,
        "image": user.image,
        "createdAt": timestamp(user.created_at),
    }
    total = sum(len(items) for items in data.values())
    folder = exports_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    final = export_path(settings, request.job_id)
    partial = folder / f".{request.job_id}.{os.getpid()}.tmp"
    done = 0
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("profile.json", _dump(profile))
            for name, items in data.items():
                for item in items:
                    if name == "articles":
                        archive.writestr(f"articles/{item['slug']}.md", _markdown(item))
                    item_delay(request)
                    done += 1
                    report_progress(request, done, total)
                archive.writestr(f"{name}.json", _dump(items))
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    expires = utcnow() + ttl(settings)
    return {
        "file": final.name,
        "size": final.stat().st_size,
        "counts": {name: len(items) for name, items in data.items()},
        "expiresAt": timestamp(expires),
    }


# -- for the views (API and pages) ---------------------------------------------


def start(request: Request, user: User) -> Job:
    """The user's export job: the one still under way, or a new one (queued,
    sent after this request commits). One at a time: a second click polls
    the first export instead of starting another."""
    db = request.dbsession
    job = db.scalar(
        select(Job)
        .where(Job.owner_id == user.id, Job.kind == KIND, Job.status.in_(ACTIVE))
        .order_by(Job.created_at.desc())
        .limit(1)
    )
    if job is None:
        job = dispatch_job(request, export_user_data, user.id, owner=user)
        db.flush()
    return job


def download(request: Request, user: User, job_id: str) -> Response:
    """The finished zip of ``user``'s export ``job_id``; NotFound for anyone
    else's, an unfinished or an expired one."""
    job = request.dbsession.scalar(
        select(Job).where(Job.id == job_id, Job.owner_id == user.id, Job.kind == KIND)
    )
    path = export_path(request.registry.settings, job_id)
    if job is None or job.status != SUCCEEDED or not path.is_file():
        raise NotFound("export")
    response = FileResponse(str(path), request=request, content_type="application/zip")
    stamp = job.created_at.strftime("%Y%m%d-%H%M%S")
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", user.username)
    response.content_disposition = f'attachment; filename="conduit-export-{name}-{stamp}.zip"'
    response.cache_control.no_store = True
    response.cache_control.private = True
    return response
