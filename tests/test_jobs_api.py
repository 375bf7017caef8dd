"""The job endpoints and the periodic jobs, in the rolled-back test
transaction: there the runner works "inline" (right after the commit, in the
committing thread), since a thread cannot share the test's connection."""

from __future__ import annotations

import io
import uuid
import zipfile
from datetime import datetime, timedelta
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from myapp.jobs import export
from myapp.models.job import QUEUED, Job
from myapp.models.meta import utcnow
from tests.conftest import ROOT, Api, QueryCounter

FRAGMENT = yaml.safe_load((ROOT / "myapp/api/jobs-openapi.yml").read_text())


def check_schema(job: dict[str, Any]) -> None:
    """``job`` is what myapp/api/jobs-openapi.yml promises."""
    schema = FRAGMENT["components"]["schemas"]["Job"]
    Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(job)


def run_job(wsgi_app: Any, name: str, *args: Any) -> str:
    job_id = str(uuid.uuid4())
    wsgi_app.registry["jobs.runner"].send(name, job_id, list(args))
    return job_id


def status(connection: Connection, job_id: str) -> Any:
    return connection.execute(
        text("SELECT status, progress, result FROM jobs WHERE id = :id"), {"id": job_id}
    ).one()


def test_export_endpoints(api: Api) -> None:
    owner, other = api.register(), api.register()
    api.article(owner["token"], title="Mine")
    api.post("/api/user/exports", None, None, status=401)
    started = api.post("/api/user/exports", None, owner["token"], status=202).json["job"]
    # Serialized before the commit: queued; the inline run finished it since.
    assert (started["status"], started["progress"], started["done"]) == ("queued", 0, False)
    job = api.get(started["statusUrl"], owner["token"]).json["job"]
    assert (job["status"], job["progress"], job["done"], job["error"]) == (
        "succeeded",
        100,
        True,
        None,
    )
    check_schema(started)
    check_schema(job)
    archive = zipfile.ZipFile(io.BytesIO(api.get(job["downloadUrl"], owner["token"]).body))
    assert any(name.startswith("articles/mine") for name in archive.namelist())
    for url in (job["statusUrl"], job["downloadUrl"]):
        assert api.get(url, other["token"], status=404).json == {
            "errors": {"job" if "jobs" in url else "export": ["not found"]}
        }
        api.get(url, None, status=401)
    api.get("/api/jobs/no-such-job", owner["token"], status=404)
    api.get("/api/user/exports/no-such-job/download", owner["token"], status=404)


def queued_export(connection: Connection, owner: dict[str, Any], job_id: str, at: datetime) -> None:
    """A queued export job of ``owner``'s, made at ``at``, as if its message were in flight."""
    owner_id = connection.execute(
        text("SELECT id FROM users WHERE username = :u"), {"u": owner["username"]}
    ).scalar_one()
    connection.execute(
        Job.__table__.insert().values(
            id=job_id,
            kind=export.KIND,
            owner_id=owner_id,
            status=QUEUED,
            progress=0,
            attempts=0,
            args=[owner_id],
            created_at=at,
            updated_at=at,
        )
    )


def test_an_active_export_is_reused(api: Api, connection: Connection) -> None:
    owner = api.register()
    queued_export(connection, owner, "waiting-export", utcnow())
    again = api.post("/api/user/exports", None, owner["token"], status=202).json["job"]
    assert again["id"] == "waiting-export"


def test_clean_exports_removes_expired_files(
    api: Api, wsgi_app: Any, connection: Connection
) -> None:
    owner = api.register()
    job = api.post("/api/user/exports", None, owner["token"], status=202).json["job"]
    path = export.export_path(wsgi_app.registry.settings, job["id"])
    assert path.is_file()
    old = utcnow() - export.ttl(wsgi_app.registry.settings) - timedelta(minutes=1)
    connection.execute(
        text("UPDATE jobs SET finished_at = :t WHERE id = :id"), {"t": old, "id": job["id"]}
    )
    cleaner = run_job(wsgi_app, "conduit.clean_exports")
    assert status(connection, cleaner).result["expired"] >= 1
    assert not path.exists()
    assert api.get(job["statusUrl"], owner["token"]).json["job"]["status"] == "expired"
    api.get(f"/api/user/exports/{job['id']}/download", owner["token"], status=404)


def test_requeue_sends_a_job_whose_message_was_lost(
    api: Api, wsgi_app: Any, connection: Connection
) -> None:
    owner = api.register()
    queued_export(connection, owner, "lost-message", utcnow() - timedelta(hours=1))
    requeue = run_job(wsgi_app, "conduit.requeue_jobs")
    assert status(connection, requeue).result == {"requeued": 1}
    assert status(connection, "lost-message").status == "succeeded"


def test_warm_caches_recounts_the_popular_tags(api: Api, wsgi_app: Any) -> None:
    author = api.register()
    api.article(author["token"], tagList=["rare", "common"])
    api.article(author["token"], tagList=["common"])
    cache = wsgi_app.registry["cache"]
    cache.invalidate_all()
    run_job(wsgi_app, "conduit.warm_caches")
    assert cache.regions["tags"].get(f"{cache.generation('lists')}:all") == ["common", "rare"]


def test_a_job_that_already_succeeded_is_not_run_again(
    api: Api, wsgi_app: Any, connection: Connection
) -> None:
    owner = api.register()
    job = api.post("/api/user/exports", None, owner["token"], status=202).json["job"]
    path = export.export_path(wsgi_app.registry.settings, job["id"])
    path.unlink()
    # A redelivered message: the job row says it is done, so nothing runs.
    wsgi_app.registry["jobs.runner"].send(export.KIND, job["id"], [0])
    assert not path.exists()
    attempts = connection.execute(select(Job.attempts).where(Job.id == job["id"])).scalar_one()
    assert attempts == 1


class RecordingRunner:
    """Keeps what would be sent, and sends nothing."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, list[Any]]] = []

    def send(self, name: str, job_id: str, args: list[Any]) -> None:
        self.sent.append((name, job_id, args))


def test_starting_an_export_costs_three_statements_and_one_send(
    api: Api, wsgi_app: Any, queries: QueryCounter, monkeypatch: Any
) -> None:
    owner = api.register()
    runner = RecordingRunner()
    monkeypatch.setitem(wsgi_app.registry, "jobs.runner", runner)
    queries.reset()
    job = api.post("/api/user/exports", None, owner["token"], status=202).json["job"]
    # The token's user, "an export already under way?", the new row: the
    # answer is built from the row just added, without reading it back.
    assert queries.count == 3, queries.statements
    assert queries.statements[-1].lstrip().upper().startswith("INSERT INTO JOBS")
    assert [(name, job_id) for name, job_id, _ in runner.sent] == [(export.KIND, job["id"])]
    assert (job["status"], job["progress"]) == ("queued", 0)
