"""Request ids and the replica's name, for following one request through
Nginx, the app's log and Celery's.

Nginx passes ``X-Request-ID`` (its ``$request_id``); a request without one
gets a fresh id. The id is echoed in the response, kept in a context
variable for log records (``%(request_id)s`` in the ini's log format), and
the response names the replica that answered (``X-Replica``), so a person
or a test can watch the load balancing. Being the first tween, it also turns
away URLs that are not UTF-8 text (400), which no later code could read.
"""

from __future__ import annotations

import contextvars
import logging
import re
import secrets
import socket
from collections.abc import Callable

from pyramid.config import Configurator
from pyramid.registry import Registry
from pyramid.request import Request
from pyramid.response import Response
from pyramid.tweens import INGRESS

from myapp.headers import set_headers

Handler = Callable[[Request], Response]
REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
VALID_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every log record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


def install_log_filter() -> None:
    """Put the filter on the root handlers, so any format may use %(request_id)s."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
            handler.addFilter(RequestIdFilter())


def url_is_text(request: Request) -> bool:
    """WebOb decodes the path and query string as UTF-8 on first use and
    raises UnicodeDecodeError (a 500) on bytes such as ``%ff``."""
    environ = request.environ
    path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
    if path.isascii() and query.isascii() and "%" not in query:
        return True  # ASCII is UTF-8, and nothing in the query is escaped
    try:
        _ = request.path_info, request.GET
    except UnicodeDecodeError:
        return False
    return True


def request_id_tween_factory(handler: Handler, registry: Registry) -> Handler:
    replica = str(registry.settings.get("server.replica_name") or socket.gethostname())

    def request_id_tween(request: Request) -> Response:
        api = request.environ.get("PATH_INFO", "").startswith("/api/")
        if not api and not url_is_text(request):
            # Nothing downstream can read such a URL (WebOb raises on first
            # use): a plain 400 here, before routing, sessions or metrics.
            # (The API's tween answers its own, in the API's JSON shape.)
            response = Response(status=400, content_type="text/plain", charset="utf-8")
            response.text = "The URL is not valid UTF-8.\n"
            response.headers["X-Replica"] = replica
            return response
        # The WSGI key itself: request.headers.get translates the name and
        # raises and catches a KeyError when it is missing (~3 us here).
        incoming = request.environ.get("HTTP_X_REQUEST_ID", "")
        # 32 hex digits, as uuid4().hex gives, without building a UUID.
        request_id = incoming if VALID_ID.match(incoming) else secrets.token_hex(16)
        request.request_id = request_id
        token = REQUEST_ID.set(request_id)
        try:
            response = handler(request)
        finally:
            REQUEST_ID.reset(token)
        set_headers(response, {"X-Request-ID": request_id, "X-Replica": replica})
        return response

    return request_id_tween


def includeme(config: Configurator) -> None:
    install_log_filter()
    # Outermost, so that every other tween's log lines carry the id.
    config.add_tween("myapp.requestid.request_id_tween_factory", under=INGRESS)
