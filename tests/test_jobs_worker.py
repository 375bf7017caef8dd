"""Jobs on a real ``celery worker`` process, a real broker and Postgres.

The app (in this process) dispatches through Redis (RabbitMQ in the last
test) to a worker started with ``celery -A myapp.tasks worker --ini``; both
use a committing database of their own, a queue of their own, and an SMTP
sink (aiosmtpd) that the worker sends to.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import transaction
import webtest
from kombu import Connection
from pyramid.scripting import prepare
from sqlalchemy.exc import IntegrityError

from myapp.config import configure
from myapp.jobs.notify import notify_followers
from myapp.models import User
from myapp.services import articles
from tests.conftest import Api
from tests.jobs_support import (
    RABBITMQ_BROKER,
    REDIS_BROKER,
    Db,
    SmtpSink,
    Worker,
    db,
    explicit,
    jobs_db,
    port,
    unique,
    wait_for,
    worker_settings,
    write_ini,
)

__all__ = ["db", "jobs_db"]  # the module fixtures, shared with the other job tests

TIMEOUT = 30


@pytest.fixture(scope="module")
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink(port(6631))
    server.start()
    yield server
    server.stop()


def start_worker(root: Path, settings: dict[str, Any]) -> Worker:
    return Worker(write_ini(root / "worker.ini", settings), root / "worker.log").start()


def web_api(settings: dict[str, Any]) -> Api:
    app = configure(explicit(settings)).make_wsgi_app()
    return Api(webtest.TestApp(app, extra_environ={"HTTP_HOST": "localhost"}))


@pytest.fixture(scope="module")
def redis_setup(
    jobs_db: str, sink: SmtpSink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("redis-worker")
    queue = unique("conduit-test")
    settings = worker_settings(
        jobs_db,
        REDIS_BROKER,
        queue,
        root,
        **{
            "mail.smtp_host": "127.0.0.1",
            "mail.smtp_port": sink.port,
            # Every kombu key of this run under its own prefix.
            "celery.transport.global_keyprefix": f"{queue}:",
        },
    )
    worker = Worker(write_ini(root / "worker.ini", settings), root / "worker.log")
    try:
        worker.start()
        yield settings
    finally:
        worker.stop()
        client = redis.Redis.from_url(REDIS_BROKER)
        for key in client.scan_iter(f"{queue}:*"):
            client.delete(key)
        client.close()


@pytest.fixture(scope="module")
def web(redis_setup: dict[str, Any]) -> Iterator[Api]:
    api = web_api(redis_setup)
    yield api
    api.app.app.registry["db_engine"].dispose()


def user_id(db: Db, user: dict[str, Any]) -> int:
    return int(db.value("SELECT id FROM users WHERE username = :u", u=user["username"]))


def article_id(db: Db, slug: str) -> int:
    return int(db.value("SELECT id FROM articles WHERE slug = :s", s=slug))


def dispatch_then_fail(registry: Any, db: Db, author: dict[str, Any]) -> int:
    """Commit an article of ``author``'s without announcing it, then dispatch
    its notifications from a request that rolls back and from one whose
    commit fails (a duplicate username); return the article's id."""
    env = prepare(registry=registry)
    request = env["request"]
    request.tm = transaction.TransactionManager(explicit=True)
    try:
        with request.tm:
            writer = request.dbsession.get(User, user_id(db, author))
            data = {"title": "Never announced", "description": "d", "body": "b"}
            quiet = articles.create(request.dbsession, writer, data).id
        with pytest.raises(RuntimeError), request.tm:
            request.dispatch(notify_followers, quiet, owner=writer)
            raise RuntimeError("the request failed after dispatching")
        with pytest.raises(IntegrityError), request.tm:
            request.dispatch(notify_followers, quiet, owner=writer)
            twin = User(username=author["username"], email="twin@example.com", password_hash="x")
            request.dbsession.add(twin)
    finally:
        env["closer"]()
    return int(quiet)


def job_states(db: Db, kind: str, article: int) -> list[tuple[str, int]]:
    return [
        (row.status, row.attempts)
        for row in db.rows(
            "SELECT status, attempts FROM jobs WHERE kind = :k AND (args->>0)::bigint = :a",
            k=kind,
            a=article,
        )
    ]


def notifications_done(db: Db, article: int) -> bool:
    states = job_states(db, "conduit.notify_followers", article) + job_states(
        db, "conduit.send_notifications", article
    )
    return bool(states) and all(status == "succeeded" for status, _ in states)


def followed_author(api: Api, followers: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    author = api.register()
    fans = [api.register() for _ in range(followers)]
    for fan in fans:
        api.post(f"/api/profiles/{author['username']}/follow", token=fan["token"], status=200)
    return author, fans


def addresses(users: list[dict[str, Any]]) -> list[str]:
    return sorted(f"{u['username']}@example.com" for u in users)


def test_publish_notifies_each_follower_exactly_once(web: Api, sink: SmtpSink, db: Db) -> None:
    author, fans = followed_author(web, 3)
    web.register()  # not a follower: gets nothing
    slug = web.article(author["token"], title="Fresh news")["slug"]
    article = article_id(db, slug)
    wait_for(lambda: notifications_done(db, article), TIMEOUT, "the notification jobs")
    messages = sink.about(article)
    assert sorted(m["To"] for m in messages) == addresses(fans)
    assert len({m["Message-ID"] for m in messages}) == 3
    assert all(m["Subject"] == f"{author['username']} published: Fresh news" for m in messages)
    assert f"/article/{slug}" in messages[0].get_payload()
    statuses = db.rows("SELECT status FROM notifications WHERE article_id = :a", a=article)
    assert sorted(s for (s,) in statuses) == ["sent"] * 3


def test_a_rolled_back_or_failed_commit_sends_nothing(web: Api, sink: SmtpSink, db: Db) -> None:
    author, fans = followed_author(web, 2)
    quiet = dispatch_then_fail(web.app.app.registry, db, author)
    # A committed announcement after it, through the same FIFO worker: once
    # that one is done, anything the rolled-back one had sent would be too.
    later = article_id(db, web.article(author["token"])["slug"])
    wait_for(lambda: notifications_done(db, later), TIMEOUT, "the later notifications")
    assert sorted(m["To"] for m in sink.about(later)) == addresses(fans)
    assert sink.about(quiet) == []
    assert db.value("SELECT count(*) FROM notifications WHERE article_id = :a", a=quiet) == 0
    assert db.value("SELECT count(*) FROM jobs WHERE (args->>0)::bigint = :a", a=quiet) == 0


def test_smtp_down_is_retried_until_it_is_back(web: Api, sink: SmtpSink, db: Db) -> None:
    author, fans = followed_author(web, 2)
    sink.stop()
    try:
        article = article_id(db, web.article(author["token"])["slug"])

        def retrying() -> bool:
            return [s for s, _ in job_states(db, "conduit.send_notifications", article)] == [
                "retrying"
            ]

        wait_for(retrying, TIMEOUT, "the send job to wait for a retry")
    finally:
        sink.start()
    wait_for(lambda: notifications_done(db, article), TIMEOUT, "the retried send")
    assert sorted(m["To"] for m in sink.about(article)) == addresses(fans)
    [(_, attempts)] = job_states(db, "conduit.send_notifications", article)
    assert attempts >= 2


def run_export(api: Api, token: str, timeout: float = TIMEOUT) -> tuple[dict[str, Any], set[int]]:
    """Start an export through the API and poll it to the end; (job, progress seen)."""
    started = api.post("/api/user/exports", None, token, status=202)
    job = started.json["job"]
    assert job["status"] == "queued" and job["progress"] == 0
    assert started.headers["Location"].endswith(job["statusUrl"])
    seen: set[int] = set()

    def finished() -> dict[str, Any] | None:
        res = api.get(job["statusUrl"], token)
        assert "no-store" in res.headers["Cache-Control"]
        current = res.json["job"]
        seen.add(current["progress"])
        return current if current["done"] else None

    return wait_for(finished, timeout, "the export"), seen


def export_fixture(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    """A user with two articles, a comment and a favourite; and someone else."""
    owner, other = api.register(), api.register()
    api.article(owner["token"], title="First post", body="# Hello\n\nworld", tagList=["a", "b"])
    theirs = api.article(other["token"], title="Their post")
    api.article(owner["token"], title="Second post")
    url = f"/api/articles/{theirs['slug']}"
    api.post(f"{url}/comments", {"comment": {"body": "Nice one"}}, owner["token"], status=201)
    api.post(f"{url}/favorite", None, owner["token"], status=200)
    return owner, other


def check_export(api: Api, owner: dict[str, Any], other: dict[str, Any], job: Any) -> None:
    assert job["status"] == "succeeded" and job["progress"] == 100, job
    assert job["counts"] == {"articles": 2, "comments": 1, "favorites": 1}
    res = api.get(job["downloadUrl"], owner["token"])
    assert res.content_type == "application/zip"
    assert "attachment" in res.headers["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(res.body))
    names = set(archive.namelist())
    assert {"profile.json", "articles.json", "comments.json", "favorites.json"} <= names
    exported = json.loads(archive.read("articles.json"))
    assert [a["title"] for a in exported] == ["First post", "Second post"]
    assert exported[0]["tagList"] == ["a", "b"]
    markdown = archive.read(f"articles/{exported[0]['slug']}.md").decode()
    assert markdown.startswith('---\ntitle: "First post"') and "# Hello\n\nworld" in markdown
    assert [c["body"] for c in json.loads(archive.read("comments.json"))] == ["Nice one"]
    assert [f["title"] for f in json.loads(archive.read("favorites.json"))] == ["Their post"]
    assert json.loads(archive.read("profile.json"))["username"] == owner["username"]
    # Someone else: the job and the file do not exist; nobody: 401.
    api.get(job["statusUrl"], other["token"], status=404)
    api.get(job["downloadUrl"], other["token"], status=404)
    api.get(job["downloadUrl"], None, status=401)
    listed = api.get("/api/user/exports", owner["token"]).json["jobs"]
    assert [j["id"] for j in listed] == [job["id"]]
    assert api.get("/api/user/exports", other["token"]).json["jobs"] == []


def test_export_end_to_end(web: Api) -> None:
    owner, other = export_fixture(web)
    job, _ = run_export(web, owner["token"])
    check_export(web, owner, other, job)


@pytest.fixture
def rabbitmq_web(jobs_db: str, tmp_path: Path) -> Iterator[Api]:
    queue = unique("conduit-test")
    settings = worker_settings(jobs_db, RABBITMQ_BROKER, queue, tmp_path)
    worker = None
    api = None
    try:
        worker = start_worker(tmp_path, settings)
        api = web_api(settings)
        yield api
    finally:
        if api is not None:
            api.app.app.registry["db_engine"].dispose()
        if worker is not None:
            worker.stop()
        with Connection(RABBITMQ_BROKER, connect_timeout=5) as conn:
            conn.default_channel.queue_delete(queue)


def test_rabbitmq_broker_round_trip(rabbitmq_web: Api) -> None:
    owner, other = export_fixture(rabbitmq_web)
    job, _ = run_export(rabbitmq_web, owner["token"])
    check_export(rabbitmq_web, owner, other, job)
