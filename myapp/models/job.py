"""Background jobs and the notifications they send.

A ``Job`` row is written in the same transaction as the work that asks for
it (myapp.tasks ``request.dispatch``), so a rolled-back request leaves no
job behind, and the status a page polls is the same whether a Celery
worker or the embedded in-process runner does the work.

A ``Notification`` is one e-mail to one follower about one article. Its
unique (article, recipient) key makes the fan-out idempotent: a task that
runs twice (a redelivery after a crash) finds the row already there and
already ``sent``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from myapp.models.meta import Base, BigId, UTCDateTime, utcnow

JOB_ID_MAX = 36
KIND_MAX = 64
MESSAGE_ID_MAX = 255

# A job's life: queued -> running -> succeeded | failed, with "retrying"
# between attempts; a finished export whose file was removed is "expired".
QUEUED = "queued"
RUNNING = "running"
RETRYING = "retrying"
SUCCEEDED = "succeeded"
FAILED = "failed"
EXPIRED = "expired"
ACTIVE = (QUEUED, RUNNING, RETRYING)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        # "my exports, newest first" (the settings page, one-at-a-time check).
        Index("ix_jobs_owner_id_kind_created_at", "owner_id", "kind", "created_at"),
        # Periodic sweeps: stale queued jobs, expired exports, old rows.
        Index("ix_jobs_status_updated_at", "status", "updated_at"),
    )

    # The Celery task id too: generated when the request dispatches the job,
    # so the caller has it before anything is sent.
    id: Mapped[str] = mapped_column(String(JOB_ID_MAX), primary_key=True)
    kind: Mapped[str] = mapped_column(String(KIND_MAX))
    owner_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The task's arguments, so a job whose message was lost can be sent again.
    args: Mapped[list[Any]] = mapped_column(JSON, default=list)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.kind} {self.status}>"


class Notification(Base):
    """One follower told about one article, at most once."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("article_id", "recipient_id"),
        # Deleting a user cascades here.
        Index("ix_notifications_recipient_id", "recipient_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    article_id: Mapped[int] = mapped_column(BigId, ForeignKey("articles.id", ondelete="CASCADE"))
    recipient_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    # Deterministic (from article and recipient): a message sent twice after
    # a crash carries the same Message-ID, which mail clients de-duplicate.
    message_id: Mapped[str] = mapped_column(String(MESSAGE_ID_MAX))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
