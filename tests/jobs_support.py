"""Helpers for the background-job tests: a committing database, a real
``celery worker`` process, an SMTP sink (aiosmtpd), bounded waits.

A worker process cannot see the rolled-back test transaction, so these
tests use a database of their own that really commits, and drop it after.
"""

from __future__ import annotations

import configparser
import contextlib
import email
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import Engine

from myapp.config import ENVIRONMENT_SETTINGS
from tests.conftest import ROOT, migrated_database

T = TypeVar("T")
REDIS_BROKER = "redis://127.0.0.1:6379/0"
RABBITMQ_BROKER = "amqp://guest:guest@127.0.0.1:5672//"
SECRET = "jobs-test-secret-" + "x" * 32


def wait_for(check: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """``check()``'s first truthy value; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def port(base: int) -> int:
    """``base`` + this xdist worker's number (ports 6631-6639 are ours)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker.startswith("gw") else 0
    # Three modules (bases 6631, 6634, 6637), three xdist workers each.
    assert index < 3, "more xdist workers than the test ports 6631-6639 allow"
    return base + index


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# -- a database that commits ------------------------------------------------------


@pytest.fixture(scope="module")
def jobs_db() -> Iterator[str]:
    """A database of the test module's own: the worker sees its commits."""
    yield from migrated_database()


@pytest.fixture(scope="module")
def db(jobs_db: str) -> Iterator[Db]:
    handle = Db(jobs_db)
    yield handle
    handle.engine.dispose()


class Db:
    """Plain SQL against the test database, outside the app."""

    def __init__(self, url: str):
        self.engine: Engine = create_engine(url, poolclass=pool.NullPool)

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql), params))

    def value(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()


# -- an SMTP server ---------------------------------------------------------------


class SmtpSink:
    """aiosmtpd on 127.0.0.1:``port`` keeping every message it accepts."""

    def __init__(self, port: int):
        self.port = port
        self.messages: list[Message] = []
        self.lock = threading.Lock()
        self.controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append(email.message_from_bytes(envelope.original_content))
        return "250 OK"

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def about(self, article_id: int) -> list[Message]:
        """Messages about article ``article_id`` (our Message-IDs say which)."""
        with self.lock:
            return [
                m for m in self.messages if m["Message-ID"].startswith(f"<notify.{article_id}.")
            ]


# -- a celery worker process ----------------------------------------------------


def write_ini(path: Path, settings: dict[str, Any]) -> Path:
    parser = configparser.ConfigParser(interpolation=None)
    parser["app:main"] = {"use": "egg:myapp"} | {
        # PasteDeploy interpolates %(here)s: a literal % is written %%.
        key: str(value).replace("%", "%%")
        for key, value in settings.items()
        if not key.startswith("_")
    }
    with path.open("w") as handle:
        parser.write(handle)
    return path


def clean_environment() -> dict[str, str]:
    """Our environment without the variables that override ini settings."""
    overrides = {env for _, env, _ in ENVIRONMENT_SETTINGS}
    return {k: v for k, v in os.environ.items() if k not in overrides}


class Worker:
    """``celery -A myapp.tasks worker --ini FILE`` as a process group of its own."""

    def __init__(self, ini: Path, log: Path, concurrency: int = 1):
        self.ini = ini
        self.log = log
        self.concurrency = concurrency
        self.name = unique("jobs-test")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> Worker:
        offset = self.log.stat().st_size if self.log.exists() else 0
        celery = str(Path(sys.executable).with_name("celery"))
        command = [
            celery,
            "-A",
            "myapp.tasks",
            "worker",
            "--ini",
            str(self.ini),
            "-n",
            f"{self.name}@%h",
            "-c",
            str(self.concurrency),
            "-l",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=clean_environment(),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

        def ready() -> bool:
            assert self.process is not None and self.process.poll() is None, self.output()
            return " ready." in self.output(offset)

        wait_for(ready, timeout, "the celery worker to start", interval=0.1)
        return self

    def output(self, offset: int = 0) -> str:
        if not self.log.exists():
            return ""
        with self.log.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")

    def _signal(self, sig: int) -> None:
        # The whole group: pool processes may outlive the main one.
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool) at once."""
        self._signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=30)

    def stop(self, timeout: float = 20) -> None:
        """Warm shutdown (SIGTERM), SIGKILL if it takes too long."""
        if self.process is None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        # The pool's children are in the group too.
        self._signal(signal.SIGKILL)
        self.process = None


def worker_settings(url: str, broker: str, queue: str, root: Path, **extra: Any) -> dict[str, Any]:
    """Settings shared by a worker's ini and the test's own (web) app."""
    return {
        "sqlalchemy.url": url,
        "auth.secret": SECRET,
        "auth.argon2_time_cost": "1",
        "auth.argon2_memory_cost": "1024",
        "auth.argon2_parallelism": "1",
        "tm.annotate_user": "false",
        "celery.broker_url": broker,
        "celery.queue": queue,
        "jobs.exports_dir": str(root / "exports"),
        "mail.outbox": str(root / "outbox"),
        # Quick retries: a test waits seconds, not minutes.
        "celery.retry_backoff_max": "1",
        "celery.max_retries": "20",
        "celery.time_limit": "60",
    } | {k: str(v) for k, v in extra.items()}


def explicit(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` pinned against environment overrides (see myapp.config)."""
    return settings | {"_explicit": list(settings)}
