"""Background jobs over the API (not part of RealWorld; see jobs-openapi.yml).

* ``POST /api/user/exports``   start "export my data" -> 202 ``{"job": ...}``
  (the user's export already queued or running, if there is one);
* ``GET  /api/user/exports``   the user's latest exports;
* ``GET  /api/jobs/{id}``      a job's status and progress, for polling;
* ``GET  /api/user/exports/{id}/download``  the finished zip.

A job is visible to its owner only: anyone else gets the same 404 as for a
job that does not exist, so ids cannot be probed. Every answer is
``no-store``: progress must never come from a cache.
"""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import view_config

from myapp.api.auth import required_user
from myapp.jobs import export, records
from myapp.resources import USER
from myapp.services.errors import NotFound


def _no_store(request: Request) -> None:
    request.response.cache_control.no_store = True


@view_config(route_name="api.exports", request_method="POST", renderer="json", permission=USER)
def start_export(request: Request) -> dict[str, Any]:
    job = export.start(request, required_user(request))
    request.response.status = 202
    request.response.location = request.route_url("api.job", id=job.id)
    _no_store(request)
    return {"job": records.job_data(request, job)}


@view_config(route_name="api.exports", request_method="GET", renderer="json", permission=USER)
def list_exports(request: Request) -> dict[str, Any]:
    user = required_user(request)
    jobs = records.latest(request.dbsession, user.id, export.KIND)
    _no_store(request)
    return {"jobs": [records.job_data(request, job) for job in jobs]}


@view_config(route_name="api.job", request_method="GET", renderer="json", permission=USER)
def job_status(request: Request) -> dict[str, Any]:
    user = required_user(request)
    job = records.owned(request.dbsession, request.matchdict["id"], user.id)
    if job is None:
        raise NotFound("job")
    _no_store(request)
    return {"job": records.job_data(request, job)}


@view_config(route_name="api.export_download", request_method="GET", permission=USER)
def download(request: Request) -> Response:
    return export.download(request, required_user(request), request.matchdict["id"])
