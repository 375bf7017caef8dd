"""Real browser tests: headless Chromium driven by Playwright against a real
server process.

* The browser is Debian's ``chromium`` (/usr/bin/chromium, or ``CHROMIUM``),
  never a downloaded build: ``make test`` installs it with apt. Without it the
  tests skip, saying so.
* The server is the app under waitress, in its own process, on a port in
  6611-6619, with a private Postgres database (created, migrated, dropped)
  and its sessions and cache in Redis under a key prefix of its own.
* A failing test leaves a screenshot in ``var/browser-failures/``.
* ``CONDUIT_SCREENSHOTS=docs/screenshots`` makes the tour save the reference
  screenshots of the main pages.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import ROOT, base_settings, create_database, drop_database

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
PORTS = range(6611, 6620)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
FAILURES = ROOT / "var" / "browser-failures"


def _free_port() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    offset = int("".join(c for c in worker if c.isdigit()) or 0)
    ports = list(PORTS)
    ports = ports[offset % len(ports) :] + ports[: offset % len(ports)]
    for port in ports:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 6611-6619 for the test server")


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"test server exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                # Our server (waitress ident), not something else on the port.
                if response.status == 200 and response.headers.get("Server") == "conduit-test":
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"test server did not come up: {log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _start(
    settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server on a free port (another run may take the port between
    our probe and its bind: then try the next one)."""
    error: Exception | None = None
    for _attempt in range(3):
        port = _free_port()
        log = tmp_path_factory.mktemp("server") / "server.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.browser.serve", json.dumps(settings), str(port)],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(base + "/", process, log)
        except RuntimeError as exc:
            _stop(process)
            error = exc
            continue
        return process, base
    raise RuntimeError(f"the test server did not start: {error}")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        found = shutil.which("chromium")
        if found is None:
            pytest.skip(f"chromium is not installed ({CHROMIUM}): apt-get install -y chromium")
        return found
    return CHROMIUM


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app in a waitress process on Postgres + Redis; yields its base URL."""
    from myapp.scripts import migrate

    url = create_database()
    prefix = f"conduit-browser:{uuid.uuid4().hex[:12]}:"
    try:
        migrate.upgrade(str(ROOT / "development.ini"), url)
        settings = {k: v for k, v in base_settings(url).items() if k != "_explicit"}
        settings.update(
            {
                "redis.url": REDIS_URL,
                "session.redis_prefix": prefix + "session:",
                "cache.prefix": prefix + "cache:",
                "pyramid.reload_templates": "false",
            }
        )
        settings["_explicit"] = list(settings)
        process, base = _start(settings, tmp_path_factory)
        try:
            yield base
        finally:
            _stop(process)
    finally:
        drop_database(url)
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


class Pages:
    """Browser contexts (one per visitor) for one test; screenshots on failure."""

    def __init__(self, browser: Any, base_url: str):
        self.browser = browser
        self.base_url = base_url
        self.contexts: list[Any] = []
        self.console_errors: list[str] = []

    def visitor(self, javascript: bool = True) -> Any:
        context = self.browser.new_context(
            base_url=self.base_url,
            java_script_enabled=javascript,
            viewport={"width": 1200, "height": 900},
        )
        context.set_default_timeout(10_000)
        self.contexts.append(context)
        page = context.new_page()
        page.on(
            "console",
            lambda message: (
                self.console_errors.append(message.text) if message.type == "error" else None
            ),
        )
        page.on("pageerror", lambda error: self.console_errors.append(str(error)))
        return page

    def screenshot_all(self, name: str) -> list[Path]:
        FAILURES.mkdir(parents=True, exist_ok=True)
        saved = []
        for i, context in enumerate(self.contexts):
            for j, page in enumerate(context.pages):
                path = FAILURES / f"{name}-{i}-{j}.png"
                try:
                    page.screenshot(path=str(path), full_page=True)
                    saved.append(path)
                except Exception:  # a crashed page has nothing to show
                    continue
        return saved

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser: Any, server: str, request: pytest.FixtureRequest) -> Iterator[Pages]:
    pages = Pages(browser, server)
    yield pages
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for path in pages.screenshot_all(request.node.name):
            print(f"screenshot of the failure: {path}")
    pages.close()
