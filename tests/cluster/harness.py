"""Tools for the cluster tests: a cluster of our own, a Postgres of our own,
and a bounded load generator. Traffic goes to 127.0.0.1 only."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.pg import OwnPostgres  # noqa: F401 (the fault tests' own Postgres)

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Cluster:
    dir: Path
    env: dict[str, str]
    base_port: int
    nginx_port: int
    replicas: int

    def replica_port(self, i: int) -> int:
        return self.base_port + i - 1

    def pid(self, i: int) -> int:
        return int((self.dir / "pids" / f"web-{i}.pid").read_text())

    def signal_replica(self, i: int, sig: int) -> None:
        """Signal replica i's whole process group (master and workers)."""
        os.killpg(os.getpgid(self.pid(i)), sig)

    def wait_replica_gone(self, i: int, timeout: float = 30) -> None:
        pid = self.pid(i)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        raise AssertionError(f"replica {i} did not stop")

    def start_replica(self, i: int) -> None:
        subprocess.run([str(ROOT / "cluster/replica.sh"), str(i)], env=self.env, check=True)
        wait_http(self.replica_port(i), "/readyz")

    def up(self) -> None:
        subprocess.run([str(ROOT / "cluster/up.sh")], env=self.env, check=True, timeout=180)

    def down(self) -> None:
        subprocess.run([str(ROOT / "cluster/down.sh")], env=self.env, timeout=60)


def make_cluster(database_url: str, base_port: int, nginx_port: int, replicas: int = 3) -> Cluster:
    run_dir = Path(tempfile.mkdtemp(prefix="conduit-cluster-"))
    env = dict(os.environ)
    env.update(
        CLUSTER_DIR=str(run_dir),
        BASE_PORT=str(base_port),
        NGINX_PORT=str(nginx_port),
        REPLICAS=str(replicas),
        WEB_CONCURRENCY="2",
        DATABASE_URL=database_url,
        CACHE_PREFIX=f"conduit-faults-{uuid.uuid4().hex[:8]}:",
        CLUSTER_INITDB_ARGS="--no-demo",
        # Fault tests need failures to show fast, not a 5 s statement timeout.
        DB_POOL_TIMEOUT="3",
        NGINX_AUTH_RATE="1000",
    )
    env["CLUSTER_JOBS"] = "0"
    return Cluster(run_dir, env, base_port, nginx_port, replicas)


def request(
    port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 10
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def wait_http(port: int, path: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if request(port, path, timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"127.0.0.1:{port}{path} never answered 200")


@dataclass
class Load:
    """GETs through one port from a few threads until stopped (or ``limit`` seconds)."""

    port: int
    paths: list[str]
    threads: int = 4
    limit: float = 60
    statuses: Counter[int | str] = field(default_factory=Counter)
    replicas: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()

    def _run(self, n: int) -> None:
        deadline = time.monotonic() + self.limit
        i = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            i += 1
            path = self.paths[i % len(self.paths)]
            # A unique query string: the micro-cache must not hide the replicas.
            sep = "&" if "?" in path else "?"
            try:
                status, headers, _ = request(self.port, f"{path}{sep}n={n}-{i}")
                with self._lock:
                    self.statuses[status] += 1
                    self.replicas[headers.get("X-Replica", "?")] += 1
            except OSError as exc:
                with self._lock:
                    self.statuses["exception"] += 1
                    self.errors.append(repr(exc))

    def __enter__(self) -> Load:
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, args=(n,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(30)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    def failures(self) -> dict[int | str, int]:
        return {k: v for k, v in self.statuses.items() if k != 200}


def kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(os.getpgid(pid), signal.SIGKILL)
