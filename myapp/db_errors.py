"""What a request sees when the database itself fails."""

from __future__ import annotations

import logging

from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import exception_view_config
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from myapp.errors import error_response

log = logging.getLogger(__name__)


@exception_view_config(OperationalError)
@exception_view_config(InterfaceError)
def database_unavailable(exc: DBAPIError, request: Request) -> Response:
    """Connection refused, server restarting, statement timeout: a clean 503.

    Only these two: a DataError or ProgrammingError is a bug of ours, and
    must show up as one (a logged 500), not pass for an outage.
    """
    log.warning("database error on %s %s: %s", request.method, request.path, exc.orig)
    response = error_response(request, 503, {"database": ["is unavailable, try again shortly"]})
    response.headers["Retry-After"] = "5"
    return response


@exception_view_config(IntegrityError)
def conflict(exc: IntegrityError, request: Request) -> Response:
    """A constraint race that was still losing after pyramid_retry's attempts."""
    log.info("integrity error on %s %s: %s", request.method, request.path, exc.orig)
    return error_response(request, 409, {"resource": ["conflicts with a concurrent change"]})
