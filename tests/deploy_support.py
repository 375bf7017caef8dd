"""Rendering and checking deploy/k8s and docker-compose.yml (tests/test_deploy.py).

Rendering: ``kubectl kustomize`` when kubectl is installed (the real thing;
the machine image has it), else ``render_minimal``: a small renderer for
exactly the kustomize features deploy/k8s uses — ``resources`` (files and
directories), ``namespace``, ``images``, ``replicas`` and ``patches`` that
are JSON 6902 lists with a kind/name target. Anything else in a
kustomization is refused rather than rendered wrong, and a test checks that
both renderers agree wherever kubectl exists.

Checking: ``check_manifests`` returns the broken invariants as sentences
(empty: all hold), so tests can show that a mutated manifest is caught
(tests/test_deploy.py has the compose file's equivalent, ``check_compose``).
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from myapp.config import ENVIRONMENT_SETTINGS

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
KUSTOMIZATIONS = {
    "base": K8S / "base",
    "dev": K8S / "overlays" / "dev",
    "prod": K8S / "overlays" / "prod",
}
SECRET_EXAMPLE = K8S / "base" / "secret.example.yaml"
COMPOSE_FILE = ROOT / "docker-compose.yml"
# The oldest Kubernetes minor still maintained by the big managed offerings.
K8S_VERSION = "1.30.0"

Resource = dict[str, Any]
# Required by production.ini (SECRET_KEY) or by the stack's shape.
WEB_REQUIRED_ENV = {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}


def load_documents(path: Path) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


# -- rendering ----------------------------------------------------------------


def kubectl() -> str | None:
    return shutil.which("kubectl")


def render_with_kubectl(path: Path) -> list[Resource]:
    binary = kubectl()
    assert binary, "kubectl is not installed"
    out = subprocess.run(
        [binary, "kustomize", str(path)], check=True, capture_output=True, text=True, timeout=120
    )
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def render(path: Path) -> list[Resource]:
    return render_with_kubectl(path) if kubectl() else render_minimal(path)


SUPPORTED_FIELDS = {"apiVersion", "kind", "resources", "namespace", "images", "replicas", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "StorageClass"}
SCALABLE = {"Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"}


def render_minimal(path: Path) -> list[Resource]:
    """Render ``path``/kustomization.yaml with the features deploy/k8s uses."""
    spec = yaml.safe_load((path / "kustomization.yaml").read_text())
    unsupported = set(spec) - SUPPORTED_FIELDS
    if unsupported:
        raise NotImplementedError(f"{path}: kustomize fields {sorted(unsupported)}")
    resources: list[Resource] = []
    for entry in spec.get("resources", []):
        target = path / entry
        resources += render_minimal(target) if target.is_dir() else load_documents(target)
    for patch in spec.get("patches", []):
        _patch(resources, patch)
    if "namespace" in spec:
        for res in resources:
            if res["kind"] not in CLUSTER_SCOPED:
                res["metadata"]["namespace"] = spec["namespace"]
    for image in spec.get("images", []):
        for container in _all_containers(resources):
            if _image_name(container["image"]) == image["name"]:
                name = image.get("newName", image["name"])
                container["image"] = f"{name}:{image['newTag']}" if "newTag" in image else name
    for replicas in spec.get("replicas", []):
        for res in resources:
            if res["kind"] in SCALABLE and res["metadata"]["name"] == replicas["name"]:
                res["spec"]["replicas"] = replicas["count"]
    return resources


def _patch(resources: list[Resource], patch: dict[str, Any]) -> None:
    operations = yaml.safe_load(patch["patch"])
    if not isinstance(operations, list) or set(patch) != {"target", "patch"}:
        raise NotImplementedError(f"only inline JSON 6902 patches are supported: {patch}")
    target = patch["target"]
    matched = [
        res
        for res in resources
        if res["kind"] == target["kind"] and res["metadata"]["name"] == target["name"]
    ]
    if not matched:
        raise ValueError(f"patch target not found: {target}")
    for res in matched:
        for op in operations:
            json_patch(res, op)


def json_patch(document: Any, op: dict[str, Any]) -> None:
    """Apply one RFC 6902 operation (add, replace, remove, test) in place."""
    keys = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
    parent = document
    for key in keys[:-1]:
        parent = parent[int(key)] if isinstance(parent, list) else parent[key]
    last: Any = keys[-1]
    if isinstance(parent, list) and last != "-":
        last = int(last)
    kind = op["op"]
    if kind == "test":
        if parent[last] != op["value"]:
            raise ValueError(f"test failed at {op['path']}: {parent[last]!r} != {op['value']!r}")
    elif kind == "remove":
        del parent[last]
    elif kind == "replace":
        if isinstance(parent, dict) and last not in parent:
            raise KeyError(f"replace: nothing at {op['path']}")
        parent[last] = copy.deepcopy(op["value"])
    elif kind == "add" and isinstance(parent, list):
        parent.insert(len(parent) if last == "-" else last, copy.deepcopy(op["value"]))
    elif kind == "add":
        parent[last] = copy.deepcopy(op["value"])
    else:
        raise NotImplementedError(f"JSON patch op {kind!r}")


def _image_name(image: str) -> str:
    name = image.split("@", 1)[0]
    # A tag is after the last ":" unless that ":" belongs to a registry port.
    head, _, tail = name.rpartition(":")
    return head if head and "/" not in tail else name


def _pod_spec(res: Resource) -> dict[str, Any] | None:
    if res["kind"] in SCALABLE | {"Job", "DaemonSet"}:
        return res["spec"]["template"]["spec"]
    return None


def _all_containers(resources: Iterable[Resource]) -> list[dict[str, Any]]:
    containers = []
    for res in resources:
        spec = _pod_spec(res)
        if spec:
            containers += spec.get("initContainers", []) + spec["containers"]
    return containers


# -- what the app reads ---------------------------------------------------------

PY_ENV = re.compile(r"""os\.(?:environ(?:\.get)?|getenv)\s*[\[(]\s*["']([A-Z][A-Z0-9_]*)["']""")
SH_ENV = re.compile(r"\$\{([A-Z][A-Z0-9_]*)")


def app_environment_names() -> set[str]:
    """Every environment variable the app image's processes read.

    myapp/config.py's ENVIRONMENT_SETTINGS, plus what the code reads
    directly (gunicorn.conf.py, myapp/, the container's wait script) and
    what docker/entrypoint.sh expands.
    """
    names = {env for _key, env, _coerce in ENVIRONMENT_SETTINGS}
    sources = [*sorted((ROOT / "myapp").rglob("*.py")), ROOT / "gunicorn.conf.py"]
    sources += sorted((ROOT / "docker").glob("*.py"))
    for source in sources:
        names |= set(PY_ENV.findall(source.read_text()))
    names |= set(SH_ENV.findall((ROOT / "docker" / "entrypoint.sh").read_text()))
    return names


def image_port() -> int:
    """The port gunicorn binds in the image (docker/Dockerfile's BIND)."""
    found = re.search(r"BIND=[\d.]+:(\d+)", (ROOT / "docker" / "Dockerfile").read_text())
    assert found, "BIND not found in docker/Dockerfile"
    return int(found.group(1))


def secret_example_keys() -> set[str]:
    (secret,) = load_documents(SECRET_EXAMPLE)
    return set(secret["stringData"])


# -- the invariants: Kubernetes ----------------------------------------------------


def _find(resources: list[Resource], kind: str, name: str) -> Resource | None:
    for res in resources:
        if res["kind"] == kind and res["metadata"]["name"] == name:
            return res
    return None


def _first_container(res: Resource) -> dict[str, Any]:
    return res["spec"]["template"]["spec"]["containers"][0]


def _env_names(container: dict[str, Any], resources: list[Resource]) -> set[str]:
    names = {env["name"] for env in container.get("env", [])}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        config = ref and _find(resources, "ConfigMap", ref["name"])
        names |= set(config["data"]) if config else set()
    return names


def _config_value(resources: list[Resource], key: str) -> str | None:
    config = _find(resources, "ConfigMap", "conduit-config")
    return config["data"].get(key) if config else None


def _labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _pod_ports(resources: list[Resource], selector: dict[str, str]) -> set[Any]:
    ports: set[Any] = set()
    for res in resources:
        spec = _pod_spec(res)
        if spec and _labels_match(selector, res["spec"]["template"]["metadata"]["labels"]):
            for container in spec["containers"]:
                for port in container.get("ports", []):
                    ports |= {port["containerPort"], port.get("name")}
    return ports


def check_manifests(
    resources: list[Resource],
    route_exists: Callable[[str], bool],
    env_names: set[str],
    secret_keys: set[str],
    migrate_command: list[str],
) -> list[str]:
    """The invariants that matter, as a list of violations (empty: all hold)."""
    bad: list[str] = []
    web, beat = _find(resources, "Deployment", "web"), _find(resources, "Deployment", "beat")
    worker, job = _find(resources, "Deployment", "worker"), _find(resources, "Job", "migrate")
    if not (web and beat and worker and job):
        return ["Deployments web, worker, beat and Job migrate must all exist"]
    app_image = _first_container(web)["image"]

    # beat: exactly one, never two at once, never autoscaled.
    if beat["spec"].get("replicas", 1) != 1:
        bad.append(f"beat must have exactly 1 replica, has {beat['spec']['replicas']}")
    if beat["spec"].get("strategy", {}).get("type") != "Recreate":
        bad.append("beat must use the Recreate strategy (a rolling update runs two beats)")
    hpas = [r for r in resources if r["kind"] == "HorizontalPodAutoscaler"]
    if any(h["spec"]["scaleTargetRef"]["name"] != "web" for h in hpas):
        bad.append("only the web Deployment may be autoscaled")

    # web: rolling without losing capacity, probes on real app routes.
    rolling = web["spec"].get("strategy", {})
    if rolling.get("type", "RollingUpdate") != "RollingUpdate" or (
        rolling.get("rollingUpdate", {}).get("maxUnavailable") != 0
    ):
        bad.append("web must roll with maxUnavailable 0")
    container = _first_container(web)
    ports = {p["containerPort"] for p in container.get("ports", [])}
    ports |= {p.get("name") for p in container.get("ports", [])}
    wanted = {"readinessProbe": "/readyz", "livenessProbe": "/healthz", "startupProbe": None}
    for probe_name, path in wanted.items():
        probe = container.get(probe_name, {}).get("httpGet")
        if not probe:
            bad.append(f"web has no HTTP {probe_name}")
            continue
        if path and probe["path"] != path:
            bad.append(f"web {probe_name} must be {path}, is {probe['path']}")
        if not route_exists(probe["path"]):
            bad.append(f"web {probe_name} path {probe['path']} does not exist in the app")
        if probe["port"] not in ports:
            bad.append(f"web {probe_name} port {probe['port']} is not a container port")
    if image_port() not in ports:
        bad.append(f"web must expose the image's port {image_port()}")
    startup = container.get("startupProbe", {})
    budget = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
    wait = int(_config_value(resources, "WAIT_TIMEOUT") or 120)
    if budget < wait:
        bad.append(f"web startupProbe allows {budget} s, the entrypoint may wait {wait} s")

    # The app's containers: one image, the names the app reads, refs that resolve.
    for res, role in ((web, "web"), (worker, "worker"), (beat, "beat"), (job, "migrate")):
        app = _first_container(res)
        if app["image"] != app_image:
            bad.append(f"{role} runs {app['image']}, web runs {app_image}")
        if app.get("args", [None])[0] != role:
            bad.append(f"{role} must run the image's {role!r} role, runs {app.get('args')}")
        unknown = _env_names(app, resources) - env_names
        if unknown:
            bad.append(f"{role} sets variables the app never reads: {sorted(unknown)}")
    missing = WEB_REQUIRED_ENV - _env_names(container, resources)
    if missing:
        bad.append(f"web lacks {sorted(missing)}")
    if _first_container(job).get("args") != migrate_command:
        bad.append(f"migrate Job must run {migrate_command} like the compose migrate service")
    for app in _all_containers(resources):
        for env in app.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref and (ref["name"] != "conduit-secrets" or ref["key"] not in secret_keys):
                bad.append(f"secret {ref} is not in deploy/k8s/base/secret.example.yaml")
        for source in app.get("envFrom", []):
            ref = source.get("configMapRef")
            if ref and not _find(resources, "ConfigMap", ref["name"]):
                bad.append(f"ConfigMap {ref['name']} does not exist")
        limits = app.get("resources", {})
        for part in ("requests", "limits"):
            if not {"cpu", "memory"} <= set(limits.get(part, {})):
                bad.append(f"container {app['name']} lacks cpu/memory {part}")

    bad += _check_scaling(resources, web, worker, beat, hpas)
    bad += _check_routing(resources)
    return bad


def _check_scaling(
    resources: list[Resource], web: Resource, worker: Resource, beat: Resource, hpas: list
) -> list[str]:
    bad = []
    if len(hpas) != 1:
        return ["the web Deployment needs one HorizontalPodAutoscaler"]
    hpa = hpas[0]["spec"]
    lowest, highest = hpa.get("minReplicas", 1), hpa["maxReplicas"]
    if not lowest <= web["spec"]["replicas"] <= highest:
        bad.append(f"web replicas {web['spec']['replicas']} outside the HPA's {lowest}..{highest}")
    pod_labels = web["spec"]["template"]["metadata"]["labels"]
    pdbs = [r for r in resources if r["kind"] == "PodDisruptionBudget"]
    if not any(_labels_match(p["spec"]["selector"]["matchLabels"], pod_labels) for p in pdbs):
        bad.append("no PodDisruptionBudget selects the web pods")
    for pdb in pdbs:
        if pdb["spec"].get("minAvailable", 0) >= lowest:
            bad.append("PodDisruptionBudget minAvailable must stay below minReplicas (drains)")
    # The connection budget must cover the most processes the HPA allows.
    args = _first_container(worker).get("args", [])
    concurrency = int(args[args.index("--concurrency") + 1]) if "--concurrency" in args else 1
    processes = (
        highest * int(_config_value(resources, "WEB_CONCURRENCY") or 1)
        + worker["spec"]["replicas"] * (concurrency + 1)
        + beat["spec"]["replicas"]
    )
    expected = int(_config_value(resources, "DB_EXPECTED_PROCESSES") or 0)
    if expected < processes:
        bad.append(f"DB_EXPECTED_PROCESSES is {expected}, the manifests allow {processes}")
    return bad


def _check_routing(resources: list[Resource]) -> list[str]:
    bad = []
    for svc in (r for r in resources if r["kind"] == "Service"):
        ports = _pod_ports(resources, svc["spec"]["selector"])
        for port in svc["spec"]["ports"]:
            if port.get("targetPort", port["port"]) not in ports:
                bad.append(f"Service {svc['metadata']['name']}: no pod port {port['targetPort']}")
    for ingress in (r for r in resources if r["kind"] == "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                svc = _find(resources, "Service", backend["name"])
                names = {p.get("name") for p in svc["spec"]["ports"]} if svc else set()
                if backend["port"].get("name") not in names:
                    bad.append(f"Ingress backend {backend} is not a Service port")
    return bad
