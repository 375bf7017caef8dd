"""The root resource: the one ACL the whole app needs.

Per-object rules (only an article's author edits it) are checked by the
services, where the API and the pages share them.
"""

from __future__ import annotations

from pyramid.authorization import Allow, Authenticated
from pyramid.request import Request

# Views that need a logged-in user say ``permission=USER``.
USER = "user"


class Root:
    __acl__ = [(Allow, Authenticated, USER)]

    def __init__(self, request: Request):
        self.request = request
