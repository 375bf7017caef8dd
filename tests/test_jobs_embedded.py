"""The embedded default (no broker): jobs run in a thread of the web process,
after the commit and never on rollback, with the same job rows, progress
and retries as on a Celery worker. A committing database of its own: the
runner's thread cannot share the rolled-back test connection."""

from __future__ import annotations

import email
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import webtest

from myapp.config import configure
from myapp.jobs.embedded import ThreadRunner
from tests.conftest import Api
from tests.jobs_support import (
    Db,
    SmtpSink,
    db,
    explicit,
    jobs_db,
    port,
    wait_for,
    worker_settings,
)
from tests.test_jobs_worker import (
    addresses,
    article_id,
    check_export,
    dispatch_then_fail,
    export_fixture,
    followed_author,
    job_states,
    notifications_done,
    run_export,
)

__all__ = ["db", "jobs_db"]  # the module fixtures, shared with the other job tests

TIMEOUT = 30


def embedded_app(url: str, root: Path, **extra: Any) -> Iterator[Api]:
    settings = worker_settings(url, "", "", root, **extra)
    for key in ("celery.broker_url", "celery.queue"):
        settings.pop(key)
    app = configure(explicit(settings)).make_wsgi_app()
    runner = app.registry["jobs.runner"]
    assert isinstance(runner, ThreadRunner) and not runner.inline
    try:
        yield Api(webtest.TestApp(app, extra_environ={"HTTP_HOST": "localhost"}))
    finally:
        runner.stop()
        app.registry["db_engine"].dispose()


@pytest.fixture(scope="module")
def outbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embedded") / "outbox"


@pytest.fixture(scope="module")
def api(jobs_db: str, outbox: Path) -> Iterator[Api]:
    yield from embedded_app(jobs_db, outbox.parent, **{"jobs.item_delay_seconds": 0.1})


def outbox_recipients(outbox: Path, article: int) -> list[str]:
    files = outbox.glob(f"notify.{article}.*.eml")
    return sorted(email.message_from_bytes(path.read_bytes())["To"] for path in files)


def test_jobs_run_after_commit_and_not_on_rollback(api: Api, db: Db, outbox: Path) -> None:
    author, fans = followed_author(api, 2)
    article = article_id(db, api.article(author["token"])["slug"])
    wait_for(lambda: notifications_done(db, article), TIMEOUT, "the notification jobs")
    assert outbox_recipients(outbox, article) == addresses(fans)

    quiet = dispatch_then_fail(api.app.app.registry, db, author)
    # The runner takes one job at a time, in order: once a later one is
    # done, a job sent by the rolled-back requests would have run too.
    later = article_id(db, api.article(author["token"])["slug"])
    wait_for(lambda: notifications_done(db, later), TIMEOUT, "the later notifications")
    assert outbox_recipients(outbox, later) == addresses(fans)
    assert outbox_recipients(outbox, quiet) == []
    assert db.value("SELECT count(*) FROM jobs WHERE (args->>0)::bigint = :a", a=quiet) == 0


def test_export_progress_works_in_process(api: Api) -> None:
    owner, other = export_fixture(api)
    job, seen = run_export(api, owner["token"])
    check_export(api, owner, other, job)
    assert any(0 < p < 100 for p in seen), seen


def test_smtp_down_is_retried_in_process(jobs_db: str, db: Db, tmp_path: Path) -> None:
    sink = SmtpSink(port(6637))
    settings = {"mail.smtp_host": "127.0.0.1", "mail.smtp_port": sink.port}
    apps = embedded_app(jobs_db, tmp_path, **settings)
    api = next(apps)
    try:
        author, fans = followed_author(api, 2)
        article = article_id(db, api.article(author["token"])["slug"])

        def retrying() -> bool:
            states = job_states(db, "conduit.send_notifications", article)
            return [s for s, _ in states] == ["retrying"]

        try:
            wait_for(retrying, TIMEOUT, "the send job to wait for a retry")
        finally:
            sink.start()
        wait_for(lambda: notifications_done(db, article), TIMEOUT, "the retried send")
        assert sorted(m["To"] for m in sink.about(article)) == addresses(fans)
        [(_, attempts)] = job_states(db, "conduit.send_notifications", article)
        assert attempts >= 2
    finally:
        sink.stop()
        apps.close()
