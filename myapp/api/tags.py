"""/tags."""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.view import view_config

from myapp.services import public
from myapp.viewcache import shared_response


@view_config(
    route_name="api.tags",
    request_method="GET",
    renderer="json",
    decorator=shared_response("lists"),
)
def tags(request: Request) -> dict[str, Any]:
    return {"tags": public.tags(request.dbreads, request.cache)}
