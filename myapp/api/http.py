"""HTTP plumbing for the API: CORS, body size, JSON content type.

A tween (not a view) so that preflight ``OPTIONS`` requests and oversized
bodies are answered before routing, authentication or the database.
"""

from __future__ import annotations

from collections.abc import Callable

from pyramid.config import Configurator
from pyramid.registry import Registry
from pyramid.request import Request
from pyramid.response import Response

from myapp.errors import error_response
from myapp.requestid import url_is_text

Handler = Callable[[Request], Response]

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, X-Requested-With",
    "Access-Control-Max-Age": "86400",
}
_CORS_NAMES = frozenset(name.lower() for name in CORS_HEADERS)
DEFAULT_MAX_BODY = 1024 * 1024


def api_tween_factory(handler: Handler, registry: Registry) -> Handler:
    max_body = int(registry.settings.get("api.max_body_bytes", DEFAULT_MAX_BODY))

    def api_tween(request: Request) -> Response:
        # The raw WSGI path: request.path_info decodes it and raises on bytes
        # that are not UTF-8, which url_is_text answers below.
        if not request.environ.get("PATH_INFO", "").startswith("/api/"):
            return handler(request)
        if not url_is_text(request):
            # error_response reads the path too, so build the answer here.
            response = Response(status=400, content_type="application/json")
            response.json_body = {"errors": {"url": ["is not valid UTF-8"]}}
        elif request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response = Response(status=204)
        elif _too_large(request, max_body):
            response = error_response(
                request, 413, {"body": [f"is too large (maximum is {max_body} bytes)"]}
            )
        elif "\x00" in request.environ.get("PATH_INFO", ""):  # NUL: the same in any decoding
            # No slug or username holds NUL, and Postgres would refuse the
            # query with a ValueError (a 500): answer before routing.
            response = error_response(request, 404, {"resource": ["not found"]})
        else:
            response = handler(request)
        _api_headers(response)
        return response

    return api_tween


def _api_headers(response: Response) -> None:
    """The CORS headers, and an explicit charset on JSON, in one pass over
    the response's headers (WebOb scans them for each header read or set)."""
    kept = []
    for name, value in response.headerlist:
        lowered = name.lower()
        if lowered in _CORS_NAMES:
            continue
        if lowered == "content-type" and _charsetless_json(value):
            value = f"{value}; charset=utf-8"  # RealWorld asks for an explicit charset
        kept.append((name, value))
    # The API authenticates with a header, never a cookie, so any origin
    # may call it: "*" cannot leak a session.
    kept.extend(CORS_HEADERS.items())
    response.headerlist = kept


def _charsetless_json(content_type: str) -> bool:
    media_type, _, params = content_type.partition(";")
    return media_type.strip().lower() == "application/json" and "charset=" not in params.lower()


def _too_large(request: Request, max_body: int) -> bool:
    if request.method in ("GET", "HEAD") and not request.environ.get("CONTENT_LENGTH"):
        # No view reads their body: not worth reading (under gunicorn, whose
        # wsgi.input_terminated makes any body readable, it was read here).
        return False
    if request.content_length is not None:
        return request.content_length > max_body
    if not request.is_body_readable:
        return False
    # A chunked body has no Content-Length (gunicorn passes it through, and
    # pyramid_retry only spools it when it may retry): read one byte past
    # the limit at most, and keep what was read as the body.
    data = request.body_file_raw.read(max_body + 1)
    request.body = data
    return len(data) > max_body


def includeme(config: Configurator) -> None:
    config.add_tween(
        "myapp.api.http.api_tween_factory", under="myapp.metrics.metrics_tween_factory"
    )
