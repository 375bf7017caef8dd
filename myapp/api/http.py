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

Handler = Callable[[Request], Response]

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, X-Requested-With",
    "Access-Control-Max-Age": "86400",
}
DEFAULT_MAX_BODY = 1024 * 1024


def api_tween_factory(handler: Handler, registry: Registry) -> Handler:
    max_body = int(registry.settings.get("api.max_body_bytes", DEFAULT_MAX_BODY))

    def api_tween(request: Request) -> Response:
        if not request.path_info.startswith("/api/"):
            return handler(request)
        # The API authenticates with a header, never a cookie, so any origin
        # may call it: "*" cannot leak a session.
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response = Response(status=204)
        elif (request.content_length or 0) > max_body:
            response = error_response(
                request, 413, {"body": [f"is too large (maximum is {max_body} bytes)"]}
            )
        else:
            response = handler(request)
        response.headers.update(CORS_HEADERS)
        # RealWorld asks for an explicit charset on JSON.
        if response.content_type == "application/json" and not response.charset:
            response.charset = "utf-8"
        return response

    return api_tween


def includeme(config: Configurator) -> None:
    config.add_tween("myapp.api.http.api_tween_factory")
