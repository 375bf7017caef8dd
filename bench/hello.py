"""The bare-WSGI ceiling: what nginx + gunicorn serve with no framework at all."""

from collections.abc import Callable, Iterable
from typing import Any

BODY = b'{"hello": "world"}'


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response(
        "200 OK",
        [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))],
    )
    return [BODY]
