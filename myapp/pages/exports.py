"""Export my data, from the settings page.

The job is the one the API starts (myapp.jobs.export): a POST here queues
it (sent after this request commits) and redirects to its page, which shows
a progress bar. Without JavaScript the page refreshes itself while the job
runs (and offers a link to do it); with it, conduit.js polls the JSON
status and moves the bar. The zip is served to its owner only.
"""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import view_config

from myapp.jobs import export, records
from myapp.pages import forms
from myapp.resources import USER
from myapp.services.errors import NotFound

TEMPLATE = "myapp:templates/export.jinja2"


def _job_data(request: Request) -> dict[str, Any]:
    job = records.owned(
        request.dbsession, request.matchdict["id"], request.identity.id, export.KIND
    )
    if job is None:
        raise NotFound("export")
    request.response.cache_control.no_store = True
    return records.job_data(
        request, job, status_route="export.status", download_route="export.download"
    )


@view_config(route_name="export.start", request_method="POST", permission=USER)
def start(request: Request) -> Response:
    job = export.start(request, request.identity)
    return forms.redirect(request.route_path("export", id=job.id))


@view_config(route_name="export", request_method="GET", renderer=TEMPLATE, permission=USER)
def show(request: Request) -> dict[str, Any]:
    return {"nav": "settings", "job": _job_data(request)}


@view_config(route_name="export.status", request_method="GET", renderer="json", permission=USER)
def status(request: Request) -> dict[str, Any]:
    return {"job": _job_data(request)}


@view_config(route_name="export.download", request_method="GET", permission=USER)
def download(request: Request) -> Response:
    return export.download(request, request.identity, request.matchdict["id"])
