"""Conduit on Pyramid.

``main`` is the PasteDeploy entry point used by ``pserve``, ``pshell`` and
gunicorn's ``--paste``; all composition lives in :mod:`myapp.config`.
"""

from typing import Any

from pyramid.router import Router


def main(global_config: dict[str, Any], **settings: Any) -> Router:
    from myapp.config import configure

    return configure(settings).make_wsgi_app()
