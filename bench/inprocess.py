"""CPU per request in-process: the app from an ini file, called as WSGI.

    .venv/bin/python -m bench.inprocess [--ini production.ini]
        [--path "/api/articles?limit=20"] [--requests 2000] [--rounds 3] [--warmup 200]
        [--header "Authorization: Token <jwt>"]...

The app's settings come from the ini and the environment as always
(``DATABASE_URL``, ``CACHE_ENABLED``, ``SECRET_KEY``...). Each round calls
the app ``--requests`` times with the environ a GET through Nginx and
gunicorn carries (no body) and prints the CPU time (user + system) per
request; the minimum of the rounds is the figure docs/database.md quotes.
Nothing else runs in the process, so this measures the app alone — under
load, through the cluster, a request costs more (bench/README.md).

Instructions instead of time (a noisy box): run it under valgrind with
``--rounds 1 --requests 1`` and ``--requests 301``; the difference of the
two ``callgrind`` totals divided by 300 is the instructions per request.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


Headers = dict[str, str]


def _environ_key(name: str) -> str:
    """A header's WSGI environ key (Content-Type and -Length have no HTTP_)."""
    key = name.upper().replace("-", "_")
    return key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"


def environ(path: str, headers: Headers | None = None) -> dict[str, Any]:
    """A GET of ``path`` (with its query string) and ``headers`` as gunicorn
    passes it on."""
    path_info, _, query = path.partition("?")
    extra = {_environ_key(name): value for name, value in (headers or {}).items()}
    return extra | {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path_info,
        "QUERY_STRING": query,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "localhost",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def call(app: WSGIApp, path: str, headers: Headers | None = None) -> tuple[str, bytes]:
    """One request: its status line and body."""
    statuses: list[str] = []

    def start_response(status: str, _headers: Any, _exc_info: Any = None) -> None:
        statuses.append(status)

    body = app(environ(path, headers), start_response)
    try:
        data = b"".join(body)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return statuses[0], data


def cpu_per_request(
    app: WSGIApp, path: str, requests: int, headers: Headers | None = None
) -> float:
    """CPU seconds per request over ``requests`` calls; any answer but a
    200 is an error (a benchmark of an error page measures nothing)."""
    start = time.process_time()
    for _ in range(requests):
        status, _body = call(app, path, headers)
        if not status.startswith("200"):
            raise RuntimeError(f"GET {path} answered {status}")
    return (time.process_time() - start) / requests


def header_of(text: str) -> tuple[str, str]:
    """``"Name: value"`` as (name, value)."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"not a header: {text!r} (want 'Name: value')")
    return name.strip(), value.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ini", default="production.ini")
    parser.add_argument("--path", default="/api/articles?limit=20")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument(
        "--header", action="append", default=[], help='"Name: value" (a logged-in viewer\'s token)'
    )
    args = parser.parse_args()
    headers = dict(header_of(text) for text in args.header)

    from pyramid.paster import get_app

    app = get_app(args.ini)
    cpu_per_request(app, args.path, args.warmup, headers)
    rounds = [cpu_per_request(app, args.path, args.requests, headers) for _ in range(args.rounds)]
    for seconds in rounds:
        print(f"GET {args.path}: {seconds * 1000:.3f} ms CPU per request")
    print(f"min of {len(rounds)} x {args.requests}: {min(rounds) * 1000:.3f} ms")


if __name__ == "__main__":
    main()
