"""Sending mail: SMTP when ``mail.smtp_host`` is set, else an outbox folder.

* SMTP (``mail.smtp_host``/``mail.smtp_port``, env SMTP_HOST/SMTP_PORT;
  optional ``mail.smtp_user``/``mail.smtp_password``, ``mail.smtp_starttls``):
  one connection per batch of messages. A server that is down, drops the
  connection or answers 4xx raises a transient error, which the job retries
  later; a 5xx for one recipient is that message's permanent failure.
* The embedded default writes each message to ``mail.outbox`` (env
  MAIL_OUTBOX) as ``<Message-ID>.eml``: the file name is the message's
  identity, so writing one message twice leaves one file.
"""

from __future__ import annotations

import os
import re
import smtplib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

from pyramid.settings import asbool

from myapp.tasks import TransientError


class PermanentMailError(Exception):
    """The server refused this message for good (5xx)."""


class Connection(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class OutboxConnection:
    def __init__(self, folder: Path):
        self.folder = folder

    def send(self, message: EmailMessage) -> None:
        name = re.sub(r"[^A-Za-z0-9._-]", "_", str(message["Message-ID"]).strip("<>"))
        final = self.folder / f"{name}.eml"
        partial = self.folder / f".{name}.{os.getpid()}.tmp"
        partial.write_bytes(message.as_bytes())
        os.replace(partial, final)  # atomic: a reader never sees half a message


class SMTPConnection:
    def __init__(self, smtp: smtplib.SMTP):
        self.smtp = smtp

    def send(self, message: EmailMessage) -> None:
        try:
            self.smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if any(400 <= code < 500 for code in codes):
                raise TransientError(str(exc)) from exc
            raise PermanentMailError(str(exc)) from exc
        except smtplib.SMTPResponseException as exc:
            if 400 <= exc.smtp_code < 500:
                raise TransientError(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
            raise PermanentMailError(f"{exc.smtp_code} {exc.smtp_error!r}") from exc


class Mailer:
    def __init__(self, settings: dict[str, Any]):
        self.host = settings.get("mail.smtp_host") or None
        self.port = int(settings.get("mail.smtp_port") or 25)
        self.user = settings.get("mail.smtp_user") or None
        self.password = settings.get("mail.smtp_password") or ""
        self.starttls = asbool(settings.get("mail.smtp_starttls", False))
        self.timeout = float(settings.get("mail.smtp_timeout", 10))
        self.sender = str(settings.get("mail.sender") or "Conduit <noreply@conduit.localhost>")
        outbox = settings.get("mail.outbox") or Path(tempfile.gettempdir()) / "conduit-outbox"
        self.outbox = Path(outbox)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """One connection for a batch of messages."""
        if self.host is None:
            self.outbox.mkdir(parents=True, exist_ok=True)
            yield OutboxConnection(self.outbox)
            return
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        except smtplib.SMTPResponseException as exc:
            # A greeting other than 220 (busy, shutting down): try later.
            raise TransientError(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
        try:
            if self.starttls:
                smtp.starttls()
            if self.user:
                smtp.login(self.user, self.password)
            yield SMTPConnection(smtp)
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


def mailer(settings: dict[str, Any]) -> Mailer:
    return Mailer(settings)
