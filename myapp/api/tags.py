"""/tags."""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.view import view_config

from myapp.services import public


@view_config(route_name="api.tags", request_method="GET", renderer="json")
def tags(request: Request) -> dict[str, Any]:
    return {"tags": public.tags(request.dbsession, request.cache)}
