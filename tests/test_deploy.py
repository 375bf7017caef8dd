"""deploy/k8s and docker-compose.yml, checked without a cluster or an engine.

* Every manifest, and every overlay as kustomize renders it, validates
  against the Kubernetes schemas (kubernetes-validate, strict: unknown
  fields are errors).
* docker-compose.yml validates against the Compose Specification's schema
  and, where the docker CLI exists, loads as a Swarm stack.
* The invariants (tests/deploy_support.py) hold, and each check is shown
  to catch a mutated manifest.
"""

from __future__ import annotations

import configparser
import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import webtest
import yaml

from myapp.config import configure
from tests import deploy_support as ds
from tests.conftest import base_settings

RENDERED = sorted(ds.KUSTOMIZATIONS)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> webtest.TestApp:
    # The real app (SQLite needs no server): /healthz answers, /readyz runs SELECT 1.
    url = f"sqlite:///{tmp_path_factory.mktemp('deploy') / 'conduit.sqlite'}"
    return webtest.TestApp(configure(base_settings(url)).make_wsgi_app())


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[ds.Resource]]:
    return {name: ds.render(path) for name, path in ds.KUSTOMIZATIONS.items()}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(ds.COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def check(app: webtest.TestApp, compose: dict[str, Any]) -> Any:
    env_names = ds.app_environment_names()
    keys = ds.secret_example_keys()
    command = compose["services"]["migrate"]["command"]

    def route_exists(path: str) -> bool:
        return app.get(path, expect_errors=True).status_int != 404

    return lambda resources: ds.check_manifests(resources, route_exists, env_names, keys, command)


def _errors(resource: ds.Resource) -> str | None:
    try:
        kubernetes_validate.validate(resource, ds.K8S_VERSION, strict=True)
    except Exception as exc:
        return f"{resource['kind']}/{resource['metadata']['name']}: {exc}"
    return None


# -- schemas ----------------------------------------------------------------------


@pytest.mark.parametrize("name", RENDERED)
def test_rendered_overlay_validates(rendered: dict[str, list[ds.Resource]], name: str) -> None:
    resources = rendered[name]
    assert len(resources) >= 10
    assert [e for e in map(_errors, resources) if e] == []


def test_every_manifest_file_validates() -> None:
    files = [p for p in sorted(ds.K8S.rglob("*.yaml")) if p.name != "kustomization.yaml"]
    assert ds.SECRET_EXAMPLE in files
    assert [e for p in files for e in map(_errors, ds.load_documents(p)) if e] == []


def test_the_schema_check_is_strict(rendered: dict[str, list[ds.Resource]]) -> None:
    web = copy.deepcopy(next(r for r in rendered["prod"] if r["kind"] == "Deployment"))
    web["spec"]["replica"] = 3  # a typo
    assert "replica" in (_errors(web) or "")
    web = copy.deepcopy(next(r for r in rendered["prod"] if r["kind"] == "Deployment"))
    web["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] = "1"
    assert _errors(web)


def test_minimal_renderer_matches_kubectl() -> None:
    if not ds.kubectl():
        pytest.skip("kubectl is not installed: only the minimal renderer is available")
    for path in ds.KUSTOMIZATIONS.values():

        def keyed(resources: list[ds.Resource]) -> dict[tuple[str, str], ds.Resource]:
            return {(r["kind"], r["metadata"]["name"]): r for r in resources}

        assert keyed(ds.render_minimal(path)) == keyed(ds.render_with_kubectl(path)), path


def test_the_minimal_renderer_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\ncommonLabels: {a: b}\n")
    with pytest.raises(NotImplementedError):
        ds.render_minimal(tmp_path)
    doc = {"spec": {"env": [{"name": "A", "value": "1"}]}}
    with pytest.raises(ValueError):
        ds.json_patch(doc, {"op": "test", "path": "/spec/env/0/name", "value": "B"})
    ds.json_patch(doc, {"op": "add", "path": "/spec/env/-", "value": {"name": "B"}})
    assert [e["name"] for e in doc["spec"]["env"]] == ["A", "B"]


def test_compose_file_validates_against_the_compose_spec(compose: dict[str, Any]) -> None:
    schema = json.loads((Path(__file__).parent / "compose_spec" / "compose-spec.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    assert [e.message for e in validator.iter_errors(compose)] == []
    broken = copy.deepcopy(compose)
    broken["services"]["web"]["deploy"]["update_config"]["order"] = "sideways"
    assert list(validator.iter_errors(broken))


def test_compose_file_loads_as_a_swarm_stack() -> None:
    docker = shutil.which("docker")
    if not docker:
        pytest.skip("no docker CLI: check_compose covers what Swarm's schema refuses")
    env = {**os.environ, "SECRET_KEY": "only-for-this-check"}
    out = subprocess.run(
        [docker, "stack", "config", "-c", str(ds.COMPOSE_FILE)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    if "unknown command" in out.stderr or "is not a docker command" in out.stderr:
        pytest.skip("this docker CLI has no `stack config`")
    assert out.returncode == 0, out.stderr
    stack = yaml.safe_load(out.stdout)
    assert stack["services"]["web"]["deploy"]["replicas"] == 3
    assert stack["services"]["beat"]["deploy"]["update_config"]["order"] == "stop-first"


# -- invariants -----------------------------------------------------------------------


def test_what_the_app_reads_is_found() -> None:
    names = ds.app_environment_names()
    # One from each source: config.py, gunicorn.conf.py, the wait script, entrypoint.sh.
    assert {"DATABASE_URL", "WEB_CONCURRENCY", "WAIT_TIMEOUT", "INITDB_ARGS"} <= names
    assert "NOT_A_SETTING" not in names
    assert ds.image_port() == 6543


def test_no_secret_is_committed(rendered: dict[str, list[ds.Resource]]) -> None:
    (secret,) = ds.load_documents(ds.SECRET_EXAMPLE)
    assert all("REPLACE_ME" in value for value in secret["stringData"].values())
    # ... and neither the example nor any other Secret is applied with the rest.
    assert [r for name in RENDERED for r in rendered[name] if r["kind"] == "Secret"] == []


@pytest.mark.parametrize("name", RENDERED)
def test_invariants_hold(rendered: dict[str, list[ds.Resource]], check: Any, name: str) -> None:
    assert check(rendered[name]) == []


def _mutated(resources: list[ds.Resource], kind: str, name: str) -> tuple[list, ds.Resource]:
    copied = copy.deepcopy(resources)
    return copied, next(r for r in copied if r["kind"] == kind and r["metadata"]["name"] == name)


def _web(resources: list[ds.Resource]) -> tuple[list, dict[str, Any]]:
    copied, web = _mutated(resources, "Deployment", "web")
    return copied, web["spec"]["template"]["spec"]["containers"][0]


def test_the_invariant_check_catches_mutations(
    rendered: dict[str, list[ds.Resource]], check: Any
) -> None:
    prod = rendered["prod"]

    def caught(resources: list[ds.Resource], pattern: str) -> None:
        found = check(resources)
        assert any(re.search(pattern, v) for v in found), (pattern, found)

    copied, beat = _mutated(prod, "Deployment", "beat")
    beat["spec"]["replicas"] = 2
    caught(copied, "beat must have exactly 1 replica, has 2")
    copied, beat = _mutated(prod, "Deployment", "beat")
    beat["spec"]["strategy"] = {"type": "RollingUpdate"}
    caught(copied, "beat must use the Recreate")

    copied, web = _web(prod)
    web["readinessProbe"]["httpGet"]["path"] = "/ready"
    caught(copied, "readinessProbe must be /readyz")
    caught(copied, "readinessProbe path /ready does not exist in the app")
    copied, web = _web(prod)
    web["startupProbe"]["httpGet"]["path"] = "/healthcheck"
    caught(copied, "startupProbe path /healthcheck does not exist")
    copied, web = _web(prod)
    web["livenessProbe"]["httpGet"]["port"] = "metrics"
    caught(copied, "livenessProbe port metrics is not a container port")
    copied, web = _web(prod)
    web["env"].append({"name": "DB_POOLSIZE", "value": "3"})
    caught(copied, r"web sets variables the app never reads: \['DB_POOLSIZE'\]")
    copied, web = _web(prod)
    web["env"] = [e for e in web["env"] if e["name"] != "SECRET_KEY"]
    caught(copied, r"web lacks \['SECRET_KEY'\]")
    copied, web = _web(prod)
    web["env"][0]["valueFrom"]["secretKeyRef"]["key"] = "SECRET"
    caught(copied, "is not in deploy/k8s/base/secret.example.yaml")

    copied, dep = _mutated(prod, "Deployment", "web")
    dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] = 1
    caught(copied, "maxUnavailable 0")
    copied, hpa = _mutated(prod, "HorizontalPodAutoscaler", "web")
    hpa["spec"]["maxReplicas"] = 20
    caught(copied, "DB_EXPECTED_PROCESSES is 27, the manifests allow 47")
    copied, pdb = _mutated(prod, "PodDisruptionBudget", "web")
    pdb["spec"]["minAvailable"] = 3
    caught(copied, "minAvailable must stay below minReplicas")
    copied, job = _mutated(prod, "Job", "migrate")
    job["spec"]["template"]["spec"]["containers"][0]["args"] = ["alembic", "upgrade", "head"]
    caught(copied, "migrate must run the image's 'migrate' role")
    copied, svc = _mutated(prod, "Service", "web")
    svc["spec"]["selector"] = {"app.kubernetes.io/component": "api"}
    caught(copied, "Service web: no pod port http")
    copied, worker = _mutated(prod, "Deployment", "worker")
    worker["spec"]["template"]["spec"]["containers"][0]["image"] = "conduit-app:latest"
    caught(copied, "worker runs conduit-app:latest")


# -- the invariants: docker-compose.yml (Compose, podman-compose and Swarm) --------


def check_compose(compose: dict[str, Any], env_names: set[str], web_replicas: int) -> list[str]:
    bad = []
    # `docker stack deploy` validates against the v3 schema: no top-level
    # name, depends_on only as a list.
    if "name" in compose:
        bad.append("Swarm refuses a top-level `name:` (use COMPOSE_PROJECT_NAME)")
    services = compose["services"]
    for name, service in services.items():
        if not isinstance(service.get("depends_on", []), list):
            bad.append(f"{name}: Swarm only accepts depends_on as a list")
        deploy = service.get("deploy", {})
        if "condition" not in deploy.get("restart_policy", {}):
            bad.append(f"{name}: deploy.restart_policy.condition missing")
        if not {"cpus", "memory"} <= set(deploy.get("resources", {}).get("limits", {})):
            bad.append(f"{name}: deploy.resources.limits needs cpus and memory")
        if service.get("image", "").startswith("${CONDUIT_IMAGE"):
            unknown = set(service.get("environment", {})) - env_names
            if unknown:
                bad.append(f"{name} sets variables the app never reads: {sorted(unknown)}")
    beat, web = services["beat"]["deploy"], services["web"]["deploy"]
    if beat.get("replicas") != 1:
        bad.append(f"beat must have exactly 1 replica, has {beat.get('replicas')}")
    for section in ("update_config", "rollback_config"):
        if beat.get(section, {}).get("order") != "stop-first":
            bad.append(f"beat {section} must be stop-first (never two beats)")
    if web.get("replicas") != web_replicas:
        bad.append(f"web replicas {web.get('replicas')}, compose-test expects {web_replicas}")
    update = web.get("update_config", {})
    if update.get("order") != "start-first" or update.get("failure_action") != "rollback":
        bad.append("web update_config must be start-first with failure_action rollback")
    return bad + _check_compose_budget(services)


def _default(value: Any) -> int:
    """``${NAME:-12}`` -> 12 (a literal as itself)."""
    found = re.fullmatch(r"\$\{\w+:-(\d+)\}|(\d+)", str(value))
    assert found, value
    return int(found.group(1) or found.group(2))


def _check_compose_budget(services: dict[str, Any]) -> list[str]:
    """DB_EXPECTED_PROCESSES covers the processes the file starts, and their
    pools (production.ini's pool_size + max_overflow) fit in Postgres'
    max_connections less the reserves (myapp.db_budget)."""
    env = services["web"]["environment"]
    if "DB_EXPECTED_PROCESSES" not in env:
        return ["the app is not told DB_EXPECTED_PROCESSES: the budget is never checked"]
    expected = _default(env["DB_EXPECTED_PROCESSES"])
    worker = services["worker"]["command"]
    started = (
        services["web"]["deploy"]["replicas"] * _default(env["WEB_CONCURRENCY"])
        + int(worker[worker.index("--concurrency") + 1])
        + services["beat"]["deploy"]["replicas"]
    )
    bad = []
    if expected < started:
        bad.append(f"DB_EXPECTED_PROCESSES {expected} < the {started} processes compose starts")
    if str(env.get("DB_PGBOUNCER")).lower() != "true":
        per_process, limit = _per_process(), _max_connections(services)
        # Postgres' superuser_reserved_connections (3) and db.connection_reserve (5).
        if expected * per_process > limit - 3 - 5:
            bad.append(
                f"{expected} processes x {per_process} connections > max_connections {limit} - 8"
            )
    return bad


def _per_process() -> int:
    """Connections one process may hold: production.ini's pool_size + max_overflow."""
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(ds.ROOT / "production.ini")
    app = ini["app:main"]
    return int(app["sqlalchemy.pool_size"]) + int(app["sqlalchemy.max_overflow"])


def _max_connections(services: dict[str, Any]) -> int:
    found = re.search(r"max_connections=(\d+)", " ".join(services["postgres"]["command"]))
    return int(found.group(1)) if found else 100


def _expected_web_replicas() -> int:
    script = (ds.ROOT / "docker" / "compose-test.sh").read_text()
    found = re.search(r"EXPECTED_WEB_REPLICAS=(\d+)", script)
    assert found
    return int(found.group(1))


def test_compose_invariants(compose: dict[str, Any]) -> None:
    names, replicas = ds.app_environment_names(), _expected_web_replicas()
    assert check_compose(compose, names, replicas) == []

    def caught(mutate: Any, pattern: str) -> None:
        copied = copy.deepcopy(compose)
        mutate(copied)
        found = check_compose(copied, names, replicas)
        assert any(re.search(pattern, v) for v in found), (pattern, found)

    services = "services"
    caught(lambda c: c[services]["beat"]["deploy"].update(replicas=2), "beat must have exactly 1")
    caught(
        lambda c: c[services]["beat"]["deploy"]["update_config"].update(order="start-first"),
        "beat update_config must be stop-first",
    )
    caught(lambda c: c.update(name="conduit"), "top-level `name:`")
    env = "environment"
    caught(
        lambda c: c[services]["web"][env].update(
            DB_EXPECTED_PROCESSES="${DB_EXPECTED_PROCESSES:-4}"
        ),
        "< the 9 processes compose starts",
    )
    caught(
        lambda c: c[services]["web"][env].update(
            DB_EXPECTED_PROCESSES="${DB_EXPECTED_PROCESSES:-30}"
        ),
        "30 processes x 10 connections > max_connections 200",
    )
    caught(lambda c: c[services]["web"][env].pop("DB_EXPECTED_PROCESSES"), "never checked")
    caught(
        lambda c: c[services]["web"].update(depends_on={"migrate": {"condition": "x"}}),
        "web: Swarm only accepts depends_on as a list",
    )
    caught(lambda c: c[services]["web"]["environment"].update(SECRETKEY="x"), "SECRETKEY")
    caught(lambda c: c[services]["web"]["deploy"].update(replicas=2), "compose-test expects 3")


# -- docker/compose.pgbouncer.yml -------------------------------------------------------

PGBOUNCER_OVERRIDE = ds.ROOT / "docker" / "compose.pgbouncer.yml"
THROUGH_PGBOUNCER = ("web", "worker", "beat")


def _merged(base: Any, override: Any) -> Any:
    """``override`` over ``base`` as Compose merges files: mappings key by
    key, ``depends_on`` lists as their union, anything else replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            if key == "depends_on" and isinstance(value, list):
                merged[key] = [
                    *base.get(key, []),
                    *(v for v in value if v not in base.get(key, [])),
                ]
            else:
                merged[key] = _merged(base[key], value) if key in base else value
        return merged
    return override


def _pgbouncer_stack(compose: dict[str, Any]) -> dict[str, Any]:
    return _merged(compose, yaml.safe_load(PGBOUNCER_OVERRIDE.read_text()))


def check_pgbouncer_stack(stack: dict[str, Any], env_names: set[str]) -> list[str]:
    """What makes the PgBouncer variant safe: the app's long-running
    processes go through it, told so; migrate goes straight to Postgres."""
    bad = []
    services = stack["services"]
    for name in THROUGH_PGBOUNCER:
        env = services[name]["environment"]
        if "@pgbouncer:6432/" not in env.get("DATABASE_URL", ""):
            bad.append(f"{name} does not reach Postgres through pgbouncer:6432")
        if str(env.get("DB_PGBOUNCER")).lower() != "true":
            bad.append(f"{name} is not told it is behind PgBouncer (DB_PGBOUNCER)")
        if "pgbouncer" not in services[name].get("depends_on", []):
            bad.append(f"{name} does not start after pgbouncer")
    if "@postgres:5432/" not in services["migrate"]["environment"]["DATABASE_URL"]:
        bad.append("migrate must bypass PgBouncer (a session advisory lock)")
    script = (ds.ROOT / "docker" / "pgbouncer" / "entrypoint.sh").read_text()
    for variable in services["pgbouncer"]["environment"]:
        if not re.search(rf"\${{{variable}[:}}]", script):
            bad.append(f"pgbouncer sets {variable}, which its entrypoint never reads")
    bad += _check_pgbouncer_budget(services)
    return bad + check_compose(stack, env_names, _expected_web_replicas())


def _check_pgbouncer_budget(services: dict[str, Any]) -> list[str]:
    """Behind PgBouncer: the processes' pools fit in its max_client_conn, and
    its server pool in Postgres' max_connections less the reserves."""
    bouncer = services["pgbouncer"]["environment"]
    clients, pool = _default(bouncer["MAX_CLIENT_CONN"]), _default(bouncer["POOL_SIZE"])
    processes = _default(services["web"]["environment"]["DB_EXPECTED_PROCESSES"])
    bad = []
    if processes * _per_process() > clients:
        bad.append(f"{processes} processes' pools exceed PgBouncer's max_client_conn {clients}")
    if pool > _max_connections(services) - 8:
        bad.append(f"PgBouncer's pool {pool} exceeds Postgres' max_connections - 8")
    return bad


def test_the_pgbouncer_variant_validates_and_is_safe(compose: dict[str, Any]) -> None:
    schema = json.loads((Path(__file__).parent / "compose_spec" / "compose-spec.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    override = yaml.safe_load(PGBOUNCER_OVERRIDE.read_text())
    assert [e.message for e in validator.iter_errors(override)] == []
    stack = _pgbouncer_stack(compose)
    assert [e.message for e in validator.iter_errors(stack)] == []
    names = ds.app_environment_names()
    assert check_pgbouncer_stack(stack, names) == []
    # Each check catches what it is there for.
    for mutate, pattern in [
        (lambda s: s["services"]["web"]["environment"].pop("DB_PGBOUNCER"), "web is not told"),
        (
            lambda s: s["services"]["migrate"]["environment"].update(
                DATABASE_URL="postgresql://conduit:conduit@pgbouncer:6432/conduit"
            ),
            "migrate must bypass",
        ),
        (lambda s: s["services"]["worker"].update(depends_on=["redis"]), "worker does not start"),
        (
            lambda s: s["services"]["pgbouncer"]["environment"].update(NOT_READ="1"),
            "never reads",
        ),
        (
            lambda s: s["services"]["pgbouncer"]["environment"].update(MAX_CLIENT_CONN="100"),
            "exceed PgBouncer's max_client_conn 100",
        ),
        (
            lambda s: s["services"]["pgbouncer"]["environment"].update(POOL_SIZE="195"),
            "PgBouncer's pool 195 exceeds",
        ),
    ]:
        broken = copy.deepcopy(stack)
        mutate(broken)
        assert any(pattern in v for v in check_pgbouncer_stack(broken, names)), pattern
