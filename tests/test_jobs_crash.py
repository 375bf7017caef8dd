"""A slowed-down worker (``jobs.item_delay_seconds``): export progress
advances while it runs, and a worker SIGKILLed in the middle of a job
finishes it after a restart, with every effect happening once.

Redis redelivers an unacknowledged message once its visibility timeout has
passed; the timeout is short here (and swept every second) so the test
waits seconds, under a key prefix of its own so no other run's messages are
touched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import Api, migrated_database
from tests.jobs_support import (
    REDIS_BROKER,
    Db,
    SmtpSink,
    Worker,
    port,
    unique,
    wait_for,
    worker_settings,
    write_ini,
)
from tests.test_jobs_worker import (
    addresses,
    article_id,
    check_export,
    export_fixture,
    followed_author,
    job_states,
    notifications_done,
    run_export,
    web_api,
)

DELAY = 0.3
VISIBILITY = 5
TIMEOUT = 45


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Worker, Api, Db, SmtpSink]]:
    root: Path = tmp_path_factory.mktemp("slow-worker")
    queue = unique("conduit-test")
    sink = SmtpSink(port(6634))
    databases = migrated_database()
    url = next(databases)
    settings = worker_settings(
        url,
        REDIS_BROKER,
        queue,
        root,
        **{
            "jobs.item_delay_seconds": DELAY,
            "mail.smtp_host": "127.0.0.1",
            "mail.smtp_port": sink.port,
            "celery.transport.global_keyprefix": f"{queue}:",
            "celery.transport.visibility_timeout": VISIBILITY,
            "celery.transport.unacked_restore_interval": 1,
            "celery.transport.unacked_restore_throttle": 1,
        },
    )
    worker = Worker(write_ini(root / "worker.ini", settings), root / "worker.log")
    api: Api | None = None
    db = Db(url)
    try:
        sink.start()
        worker.start()
        api = web_api({k: v for k, v in settings.items() if k != "jobs.item_delay_seconds"})
        yield worker, api, db, sink
    finally:
        worker.stop()
        sink.stop()
        if api is not None:
            api.app.app.registry["db_engine"].dispose()
        db.engine.dispose()
        client = redis.Redis.from_url(REDIS_BROKER)
        for key in client.scan_iter(f"{queue}:*"):
            client.delete(key)
        client.close()
        databases.close()  # drops the database


def test_export_progress_advances_while_it_runs(slow: Any) -> None:
    _, api, _, _ = slow
    owner, other = export_fixture(api)
    job, seen = run_export(api, owner["token"])
    check_export(api, owner, other, job)
    # Four items at DELAY seconds each, polled every 50 ms: the poller saw
    # the job part-way, not only "queued" and "done".
    assert any(0 < p < 100 for p in seen), seen


def test_worker_killed_mid_job_finishes_after_restart_once(slow: Any) -> None:
    worker, api, db, sink = slow
    author, fans = followed_author(api, 5)
    article = article_id(db, api.article(author["token"])["slug"])

    def sent() -> int:
        query = "SELECT count(*) FROM notifications WHERE article_id = :a AND status = 'sent'"
        return int(db.value(query, a=article))

    # Right after the second message is recorded as sent, the worker sleeps
    # DELAY seconds before the third: kill it there, mid-job.
    wait_for(lambda: sent() >= 2, TIMEOUT, "two notifications")
    worker.kill()
    at_kill = sent()
    assert 2 <= at_kill < 5
    assert [s for s, _ in job_states(db, "conduit.send_notifications", article)] == ["running"]
    worker.start()
    wait_for(lambda: notifications_done(db, article), TIMEOUT, "the redelivered job")
    received = Counter(m["To"] for m in sink.about(article))
    assert sorted(received) == addresses(fans)
    assert set(received.values()) == {1}, received
    [(_, attempts)] = job_states(db, "conduit.send_notifications", article)
    assert attempts == 2
