"""The API explorer: Swagger UI over the spec the API is validated against.

``/api/openapi.json`` (and ``.yml``) serve ``myapp/api/openapi.yml`` with
``servers`` pointing at this deployment, so "Try it out" calls this app.
Swagger UI's files come from the ``openapi-ui-bundles`` package and are
served by the app itself: no CDN, the explorer works offline.
"""

from __future__ import annotations

import copy
from functools import cache
from importlib.resources import files
from typing import Any

import yaml
from openapi_ui_bundles import swagger_ui
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import view_config

from myapp.api.validation import spec

ONE_DAY = 24 * 3600


@cache
def jobs_spec() -> dict[str, Any]:
    """Our own endpoints (background jobs), which RealWorld's spec does not have."""
    text = files("myapp.api").joinpath("jobs-openapi.yml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def served_spec(request: Request, document: dict[str, Any] | None = None) -> dict[str, Any]:
    document = copy.deepcopy(spec() if document is None else document)
    document["servers"] = [{"url": request.application_url + "/api"}]
    return document


@view_config(route_name="explorer.jobs_spec", renderer="json", http_cache=300)
def jobs_spec_json(request: Request) -> dict[str, Any]:
    return served_spec(request, jobs_spec())


@view_config(route_name="explorer.spec_json", renderer="json", http_cache=300)
def spec_json(request: Request) -> dict[str, Any]:
    return served_spec(request)


@view_config(route_name="explorer.spec_yaml", http_cache=300)
def spec_yaml(request: Request) -> Response:
    text = yaml.safe_dump(served_spec(request), sort_keys=False, allow_unicode=True)
    return Response(text, content_type="application/yaml", charset="utf-8")


@view_config(route_name="explorer.docs", renderer="myapp.explorer:templates/docs.jinja2")
def docs(request: Request) -> dict[str, Any]:
    static = swagger_ui.static_path
    return {
        "spec_url": request.route_url("explorer.spec_json"),
        "jobs_spec_url": request.route_url("explorer.jobs_spec"),
        "css_url": request.static_url(str(static / "swagger-ui.css")),
        "js_url": request.static_url(str(static / "swagger-ui-bundle.js")),
        "preset_url": request.static_url(str(static / "swagger-ui-standalone-preset.js")),
    }


def includeme(config: Configurator) -> None:
    config.add_route("explorer.docs", "/api/docs")
    config.add_route("explorer.spec_json", "/api/openapi.json")
    config.add_route("explorer.spec_yaml", "/api/openapi.yml")
    config.add_route("explorer.jobs_spec", "/api/jobs-openapi.json")
    config.add_static_view("api/docs/static", str(swagger_ui.static_path), cache_max_age=ONE_DAY)
