"""Throwaway Postgres servers of the tests' own: a primary, and streaming
replicas made from it with ``pg_basebackup -R``.

Each server is an ``initdb`` data directory under /tmp, run as the
``postgres`` user (``runuser``) on a loopback port, and removed afterwards.
Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PG_BIN = next(Path("/usr/lib/postgresql").glob("*/bin"), Path("/usr/bin"))


def free_port(low: int, high: int, taken: set[int] | None = None) -> int:
    """A port in [low, high] that nothing listens on (nor is in ``taken``)."""
    for port in range(low, high + 1):
        if taken and port in taken:
            continue
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {low}-{high}")


def wait_for(check: Callable[[], bool], timeout: float, what: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class OwnPostgres:
    """A throwaway Postgres server (initdb) on its own port, to restart at will."""

    def __init__(self, port: int):
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="conduit-pg-"))
        shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"

    def _as_postgres(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            check=True,
            timeout=timeout,
            stdout=subprocess.DEVNULL,
        )

    def init(self) -> None:
        self._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres"
        )

    def start(self, *settings: str) -> None:
        """Start; ``settings`` are extra ``name=value`` server settings."""
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        options += "".join(f" -c {setting}" for setting in settings)
        self._as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.dir / "log"),
            "-w",
            "-t",
            "60",
            "start",
            timeout=90,
        )

    def start_on_a_free_port(self, low: int, high: int, *settings: str, taken: set[int]) -> None:
        """Start on the first port of [low, high] that works (another test run may
        take the one that looked free a moment ago)."""
        for _ in range(5):
            self.port = free_port(low, high, taken)
            try:
                self.start(*settings)
                return
            except subprocess.CalledProcessError:
                taken = taken | {self.port}
        raise RuntimeError(f"could not start Postgres on a port in {low}-{high}")

    def stop(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def replica(self, port: int) -> OwnPostgres:
        """A streaming replica of this (running) server, not started yet.

        ``pg_basebackup -R`` copies the data directory and writes
        ``standby.signal`` and ``primary_conninfo``: started, it follows us.
        """
        replica = OwnPostgres(port)
        self._as_postgres(
            str(PG_BIN / "pg_basebackup"),
            "-D",
            str(replica.data),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            timeout=120,
        )
        return replica

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            if (self.data / "postmaster.pid").exists():
                self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
