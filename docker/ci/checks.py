"""The checks of `make compose-test`, against a running compose stack.

Run by docker/compose-test.sh once `podman-compose up -d` returned; talks to
nginx on 127.0.0.1:$CONDUIT_HTTP_PORT and looks at the containers with
podman (project $COMPOSE_PROJECT). Standard library only (host's python3).
Every wait has a deadline; the first failed check stops the run (exit 1).

1. the stack comes up: the healthchecks of the web replicas (the image's),
   postgres and redis pass, /readyz through nginx says database and redis
   are ok;
2. all web replicas answer through nginx: personal requests (a token, so
   the micro-cache is bypassed) reach as many distinct X-Replica values as
   there are web containers (deploy.replicas: 3);
3. migrations ran exactly once: one migrate container, exit 0, each
   revision applied once in its log, no other container migrated, and
   alembic_version holds one row: the head;
4. Celery jobs complete through the stack: an export started over the API
   is run by the worker (its log names the job), polled to 100 %, and its
   zip downloads through nginx from a web replica (shared volume); a
   follower's notification reaches the mail catcher over SMTP;
5. /static/ is served by nginx itself (no replica header, immutable);
6. with EXPECT_PGBOUNCER=1 (docker/compose.pgbouncer.yml): every client
   connection Postgres has to the app's database comes from the pgbouncer
   container, and PgBouncer's own counters show the transactions of
   articles published through nginx.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from email.message import Message
from typing import Any

PORT = os.environ.get("CONDUIT_HTTP_PORT", "8088")
BASE = f"http://127.0.0.1:{PORT}"
PROJECT = os.environ.get("COMPOSE_PROJECT", "conduit-ci")
REPLICAS = int(os.environ.get("EXPECTED_WEB_REPLICAS", "3"))
PGBOUNCER = os.environ.get("EXPECT_PGBOUNCER") == "1"
WRITES = 10  # articles published through PgBouncer (check_pgbouncer)


def fail(message: str) -> None:
    print(f"FAIL: {message}", flush=True)
    sys.exit(1)


def ok(message: str) -> None:
    print(f"ok: {message}", flush=True)


def podman(*args: str) -> str:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        fail(f"podman {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def containers(service: str) -> list[str]:
    out = podman(
        "ps", "-a", "--format", "{{.Names}}",
        "--filter", f"label=com.docker.compose.project={PROJECT}",
        "--filter", f"label=com.docker.compose.service={service}",
    )  # fmt: skip
    return sorted(out.split())


def logs(name: str) -> str:
    done = subprocess.run(["podman", "logs", name], capture_output=True, text=True, timeout=60)
    return done.stdout + done.stderr


def http(
    method: str, path: str, body: Any = None, token: str | None = None
) -> tuple[int, Message, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def until(what: str, seconds: float, probe: Any) -> Any:
    """Call ``probe`` until it returns something truthy, at most ``seconds``."""
    deadline = time.monotonic() + seconds
    last: Any = None
    while time.monotonic() < deadline:
        try:
            result = probe()
            if result:
                return result
        except OSError as error:  # connection refused/reset while starting
            last = error
        time.sleep(1)
    fail(f"timed out after {seconds:.0f} s waiting for {what} (last error: {last})")


def register(name: str) -> tuple[str, str]:
    email = f"{name}@example.com"
    user = {"username": name, "email": email, "password": "compose-test-password"}
    status, _, body = http("POST", "/api/users", {"user": user})
    if status != 201:
        fail(f"register {name}: {status} {body[:300]!r}")
    return json.loads(body)["user"]["token"], email


def check_up() -> None:
    # Every replica is listening (the image's healthcheck)...
    def healthy(name: str) -> bool:
        return (
            subprocess.run(["podman", "healthcheck", "run", name], capture_output=True).returncode
            == 0
        )

    web = containers("web")
    until("the web replicas' healthchecks", 240, lambda: all(healthy(n) for n in web))
    for service in ("postgres", "redis"):
        for name in containers(service):
            if not healthy(name):
                fail(f"healthcheck of {name} failed")
    ok(f"healthchecks pass: {len(web)} web replicas, postgres, redis")

    # ... and nginx has stopped skipping the ones that refused connections
    # while they started (max_fails/fail_timeout): /readyz answers 200 a few
    # times in a row, over more than fail_timeout.
    def steadily_ready() -> dict[str, Any] | None:
        for _ in range(6):
            status, _, body = http("GET", "/readyz")
            if status != 200:
                return None
            time.sleep(0.5)
        return json.loads(body)

    body = until("nginx to answer /readyz steadily", 120, steadily_ready)
    if body["checks"] != {"database": "ok", "redis": "ok"}:
        fail(f"/readyz: {body}")
    ok(f"stack up: /readyz through nginx: {body['checks']}")


def check_replicas(token: str) -> None:
    names = containers("web")
    if len(names) != REPLICAS:
        fail(f"{len(names)} web containers, expected {REPLICAS}: {names}")
    hostnames = {podman("inspect", "-f", "{{.Config.Hostname}}", n).strip() for n in names}
    seen: dict[str, int] = {}

    def all_seen() -> bool:
        for _ in range(10 * REPLICAS):
            status, headers, _ = http("GET", "/api/user", token=token)
            if status != 200:
                fail(f"GET /api/user through nginx: {status}")
            replica = headers.get("X-Replica", "")
            seen[replica] = seen.get(replica, 0) + 1
        return set(seen) >= hostnames

    until("every replica to answer", 60, all_seen)
    if set(seen) != hostnames:
        fail(f"answers from {seen}, web containers are {sorted(hostnames)}")
    ok(f"{len(names)} web replicas answer through nginx: {dict(sorted(seen.items()))}")


def check_migrations() -> None:
    migrate = containers("migrate")
    if len(migrate) != 1:
        fail(f"expected one migrate container, found {migrate}")
    state = podman("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", migrate[0]).split()
    if state != ["exited", "0"]:
        fail(f"{migrate[0]}: state {state}, expected exited 0:\n{logs(migrate[0])[-3000:]}")
    applied = re.findall(r"Running upgrade (\S*) ?-> (\S+)", logs(migrate[0]))
    targets = [target.rstrip(",") for _, target in applied]
    if not targets or len(targets) != len(set(targets)):
        fail(f"migrate's log: revisions applied {targets}, expected each once")
    for service in ("web", "worker", "beat"):
        for name in containers(service):
            if "Running upgrade" in logs(name):
                fail(f"{name} ran migrations too")
    web = containers("web")[0]
    head = podman(
        "exec", web, "python", "-c",
        "from alembic.script import ScriptDirectory;"
        "from myapp.scripts.migrate import alembic_config;"
        "print(*ScriptDirectory.from_config(alembic_config('production.ini')).get_heads())",
    ).split()  # fmt: skip
    postgres = containers("postgres")[0]
    rows = podman(
        "exec", postgres, "psql", "-U", "conduit", "-d", "conduit", "-tA",
        "-c", "SELECT version_num FROM alembic_version",
    ).split()  # fmt: skip
    if rows != head or len(rows) != 1:
        fail(f"alembic_version rows {rows}, head {head}")
    ok(f"migrations ran once, in {migrate[0]}: {' '.join(targets)}; alembic_version = {rows}")


def check_export_job(token: str) -> None:
    status, _, body = http("POST", "/api/user/exports", {}, token=token)
    if status != 202:
        fail(f"POST /api/user/exports: {status} {body[:300]!r}")
    job = json.loads(body)["job"]

    def finished() -> dict[str, Any] | None:
        status, _, body = http("GET", job["statusUrl"], token=token)
        if status != 200:
            fail(f"GET {job['statusUrl']}: {status}")
        current = json.loads(body)["job"]
        return current if current["done"] else None

    done = until(f"export job {job['id']}", 120, finished)
    if done["status"] != "succeeded" or done["progress"] != 100:
        fail(f"export job ended {done['status']} at {done['progress']} %: {done}")
    if not any(job["id"] in logs(name) for name in containers("worker")):
        fail(f"no worker log names job {job['id']}: it did not run on the Celery worker")
    status, headers, body = http("GET", done["downloadUrl"], token=token)
    if status != 200 or not body.startswith(b"PK"):
        fail(f"download {done['downloadUrl']}: {status} {body[:100]!r}")
    ok(
        f"export job {job['id']} ran on the worker, 100 %; its zip ({len(body)} bytes) "
        f"downloads through nginx from replica {headers.get('X-Replica')}"
    )


def check_mail(author_token: str, author: str) -> None:
    reader_token, reader_email = register(f"reader{uuid.uuid4().hex[:8]}")
    status, _, _ = http("POST", f"/api/profiles/{author}/follow", {}, token=reader_token)
    if status != 200:
        fail(f"follow {author}: {status}")
    article = {"title": f"Compose test {uuid.uuid4().hex[:8]}", "description": "d", "body": "b"}
    status, _, body = http("POST", "/api/articles", {"article": article}, token=author_token)
    if status != 201:
        fail(f"publish: {status} {body[:300]!r}")
    mail = containers("mail")
    until(
        f"a notification to {reader_email} in the mail catcher's log",
        90,
        lambda: any(reader_email in logs(name) for name in mail),
    )
    ok(f"a follower's notification went worker -> SMTP -> mail catcher ({reader_email})")


def check_static() -> None:
    status, headers, _ = http("GET", "/static/favicon.svg")
    immutable = "immutable" in " ".join(headers.get_all("Cache-Control") or [])
    if status != 200 or "X-Replica" in headers or not immutable:
        fail(f"/static/favicon.svg: {status} {dict(headers)}")
    ok("/static/ served by nginx (no replica involved), immutable")


def psql(
    sql: str, url: str = "postgresql:///conduit?user=conduit", header: bool = False
) -> list[list[str]]:
    """``sql``'s rows (its column names first with ``header``), run by psql
    in the postgres container (its local socket trusts; PgBouncer is reached
    over the stack's network, with the password)."""
    flags = ["-X", "-A", "-F", "\t", "-P", "footer=off"] + ([] if header else ["-t"])
    out = podman(
        "exec", "-e", "PGPASSWORD=" + os.environ.get("POSTGRES_PASSWORD", "conduit"),
        containers("postgres")[0], "psql", url, *flags, "-c", sql,
    )  # fmt: skip
    return [line.split("\t") for line in out.splitlines() if line]


def pgbouncer_transactions() -> int:
    """Transactions PgBouncer has passed on to the app's database so far
    (its admin console's SHOW STATS, read with a header line)."""
    rows = psql("SHOW STATS", "postgresql://conduit@pgbouncer:6432/pgbouncer", header=True)
    header, *lines = rows
    for line in lines:
        stats = dict(zip(header, line, strict=True))
        if stats["database"] == "conduit":
            return int(stats["total_xact_count"])
    return 0


def check_pgbouncer(token: str) -> None:
    bouncers = containers("pgbouncer")
    if len(bouncers) != 1:
        fail(f"one pgbouncer container expected, found {bouncers}")
    address = podman(
        "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", bouncers[0]
    ).strip()
    # Writes: reads may all be answered from the cache.
    before = pgbouncer_transactions()
    for n in range(WRITES):
        article = {"title": f"Pooled {uuid.uuid4().hex[:8]} {n}", "description": "d", "body": "b"}
        status, _, body = http("POST", "/api/articles", {"article": article}, token=token)
        if status != 201:
            fail(f"POST /api/articles through pgbouncer: {status} {body[:300]!r}")
    after = pgbouncer_transactions()
    if after <= before:
        fail(f"PgBouncer counted no transactions for conduit ({before} -> {after})")
    clients = psql(
        "SELECT DISTINCT host(client_addr) FROM pg_stat_activity "
        "WHERE datname = 'conduit' AND backend_type = 'client backend' "
        "AND pid <> pg_backend_pid()"
    )
    sources = sorted(row[0] for row in clients)
    if sources != [address]:
        fail(f"Postgres' app connections come from {sources}, not only pgbouncer ({address})")
    ok(
        f"the app reaches Postgres only through pgbouncer ({address}): "
        f"{after - before} transactions pooled for {WRITES} articles published"
    )


def main() -> None:
    check_up()
    author = f"author{uuid.uuid4().hex[:8]}"
    token, _ = register(author)
    check_replicas(token)
    check_migrations()
    check_export_job(token)
    check_mail(token, author)
    check_static()
    if PGBOUNCER:
        check_pgbouncer(token)
    print("all compose checks passed", flush=True)


if __name__ == "__main__":
    main()
