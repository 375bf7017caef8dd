"""Static assets: served by the app, cached for a year, busted by content.

Every URL made with ``request.static_path('myapp:static/...')`` carries
``?v=<hash of the file>``, so a changed file gets a new URL the moment it is
deployed and browsers may keep the old one for a year. Nothing comes from a
CDN: the pages must work on networks that reach nothing but this app.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from typing import Any

from pyramid.config import Configurator
from pyramid.path import AssetResolver
from pyramid.request import Request
from pyramid.static import QueryStringCacheBuster

ONE_YEAR = 365 * 24 * 3600
STATIC_SPEC = "myapp:static/"


@lru_cache(maxsize=512)
def _file_hash(path: str, mtime_ns: int) -> str:
    # Keyed on mtime too, so an edited file (development) gets a new hash.
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(65536), b""):
            digest.update(chunk)
    return digest.hexdigest()[:12]


class ContentHashCacheBuster(QueryStringCacheBuster):
    """``?v=`` + a hash of the asset's bytes."""

    def __init__(self, base_spec: str, param: str = "v"):
        super().__init__(param=param)
        self.base = AssetResolver().resolve(base_spec).abspath()

    def tokenize(self, request: Request, subpath: str, kw: dict[str, Any]) -> str:
        path = os.path.normpath(os.path.join(self.base, subpath))
        if not path.startswith(self.base):
            return "0"
        try:
            return _file_hash(path, os.stat(path).st_mtime_ns)
        except OSError:
            return "0"


def includeme(config: Configurator) -> None:
    config.add_static_view("static", STATIC_SPEC, cache_max_age=ONE_YEAR)
    config.add_cache_buster(STATIC_SPEC, ContentHashCacheBuster(STATIC_SPEC))
