"""Follower notifications: one e-mail per follower per published article.

``notify_followers`` (dispatched by the publishing request) records one
``notifications`` row per follower — ``ON CONFLICT DO NOTHING`` on the
unique (article, recipient) key, so running it twice records nothing new —
and fans the work out in batches of ``jobs.notify_batch_size`` recipients,
each a ``send_notifications`` job, dispatched after its own commit.

``send_notifications`` takes each still-``pending`` row of its batch (row
lock, ``SKIP LOCKED``: two deliveries of one batch never take the same row),
sends it, marks it ``sent`` and commits before the next one. A crash between
"sent" and "marked" is the one window where a message can go out twice; it
then carries the same deterministic Message-ID, which mail clients
de-duplicate. That is "exactly once in effect".
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from pyramid.request import Request
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from myapp.jobs.mail import Connection, PermanentMailError, mailer
from myapp.jobs.steps import checkpoint, item_delay, report_progress
from myapp.models import Article, Follow, Notification, User
from myapp.models.meta import utcnow
from myapp.tasks import job

PENDING = "pending"
SENT = "sent"
FAILED = "failed"


def message_id(settings: dict[str, Any], article_id: int, recipient_id: int) -> str:
    domain = settings.get("mail.message_id_domain") or "conduit.localhost"
    return f"<notify.{article_id}.{recipient_id}@{domain}>"


def _insert(db: Session) -> Any:
    dialect = db.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(Notification)


@job(name="conduit.notify_followers")
def notify_followers(request: Request, article_id: int) -> dict[str, Any]:
    db = request.dbsession
    article = db.get(Article, article_id)
    if article is None:  # deleted since
        return {"recipients": 0, "batches": 0}
    followers = list(
        db.scalars(select(Follow.follower_id).where(Follow.followed_id == article.author_id))
    )
    settings = request.registry.settings
    if followers:
        now = utcnow()
        rows = [
            {
                "article_id": article_id,
                "recipient_id": follower,
                "message_id": message_id(settings, article_id, follower),
                "status": PENDING,
                "created_at": now,
            }
            for follower in followers
        ]
        db.execute(_insert(db).on_conflict_do_nothing(), rows)
    pending = list(
        db.scalars(
            select(Notification.recipient_id)
            .where(Notification.article_id == article_id, Notification.status == PENDING)
            .order_by(Notification.recipient_id)
        )
    )
    size = max(1, int(settings.get("jobs.notify_batch_size", 200)))
    batches = [pending[i : i + size] for i in range(0, len(pending), size)]
    for batch in batches:
        request.dispatch(send_notifications, article_id, batch, owner=article.author_id)
    return {"recipients": len(followers), "batches": len(batches)}


def _message(
    request: Request, article: Any, email: str, notification: Notification
) -> EmailMessage:
    settings = request.registry.settings
    site = str(settings.get("mail.site_url") or "http://localhost:6543").rstrip("/")
    title = " ".join(article.title.split())  # no line breaks in a header
    message = EmailMessage()
    message["From"] = mailer(settings).sender
    message["To"] = email
    message["Subject"] = f"{article.username} published: {title}"
    message["Message-ID"] = notification.message_id
    message["Date"] = format_datetime(notification.created_at)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        f"{article.username}, whom you follow on Conduit, published a new article:\n\n"
        f"{title}\n{article.description}\n\n"
        f"Read it at {site}/article/{article.slug}\n"
    )
    return message


@job(name="conduit.send_notifications")
def send_notifications(request: Request, article_id: int, recipients: list[int]) -> dict[str, Any]:
    db = request.dbsession
    article = db.execute(
        select(Article.slug, Article.title, Article.description, User.username)
        .join(User, User.id == Article.author_id)
        .where(Article.id == article_id)
    ).first()
    todo = set(
        db.scalars(
            select(Notification.recipient_id).where(
                Notification.article_id == article_id,
                Notification.recipient_id.in_(recipients),
                Notification.status == PENDING,
            )
        )
    )
    sent = failed = 0
    if article is None or not todo:
        return {"sent": 0, "failed": 0}
    with mailer(request.registry.settings).connect() as connection:
        for done, recipient in enumerate(recipients, 1):
            if recipient in todo:
                outcome = _send_one(request, connection, article, article_id, recipient)
                sent += outcome == SENT
                failed += outcome == FAILED
            report_progress(request, done, len(recipients))
    return {"sent": sent, "failed": failed}


def _send_one(
    request: Request, connection: Connection, article: Any, article_id: int, recipient: int
) -> str | None:
    db = request.dbsession
    row = db.execute(
        select(Notification, User.email)
        .join(User, User.id == Notification.recipient_id)
        .where(
            Notification.article_id == article_id,
            Notification.recipient_id == recipient,
            Notification.status == PENDING,
        )
        .with_for_update(of=Notification, skip_locked=True)
    ).first()
    if row is None:  # sent meanwhile, or another delivery holds it
        return None
    notification, email = row
    item_delay(request)
    try:
        connection.send(_message(request, article, email, notification))
        notification.status = SENT
        notification.sent_at = utcnow()
    except PermanentMailError as exc:
        notification.status = FAILED
        notification.error = str(exc)[:2000]
    outcome = notification.status
    checkpoint(request)
    return outcome
