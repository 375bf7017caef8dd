"""Static assets: served by the app, cached for a year, busted by content.

Every URL made with ``request.static_path('myapp:static/...')`` carries
``?v=<hash of the file>``, so a changed file gets a new URL the moment it is
deployed and browsers may keep the old one for a year. Nothing comes from a
CDN: the pages must work on networks that reach nothing but this app.

Pages ask for the same few asset URLs on every render, and Pyramid builds
each one from scratch (~40 µs: the static URL info, the cache buster, the
route URL); :func:`static_path` remembers them.
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
# Where the registry keeps this app's StaticPaths.
STATIC_PATHS = "pages.static_paths"
# More distinct (prefix, file, version) keys than this means someone is
# feeding us SCRIPT_NAMEs: start over rather than grow without bound.
MAX_REMEMBERED = 1024


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


class StaticPaths:
    """``request.static_path(spec + subpath)``, remembered per file version.

    The URL depends only on the prefix the app is mounted under
    (SCRIPT_NAME), the file and its token; the static view and the buster
    are fixed once the app is made. The token is not fixed for the process
    — an edited file (development) gets a new one — so it is part of the key:
    asking for it costs a ``stat``, the rest of Pyramid's work is skipped.
    """

    def __init__(self, buster: ContentHashCacheBuster, spec: str = STATIC_SPEC):
        self.buster = buster
        self.spec = spec
        self.paths: dict[tuple[str, str, str], str] = {}

    def __call__(self, request: Request, subpath: str) -> str:
        key = (request.script_name, subpath, self.buster.tokenize(request, subpath, {}))
        found = self.paths.get(key)
        if found is None:
            # Should the file change between our token and Pyramid's, this
            # entry files the newer URL under the older token, which never
            # comes back (mtimes only move on): harmless.
            found = request.static_path(self.spec + subpath)
            if len(self.paths) >= MAX_REMEMBERED:
                self.paths.clear()
            self.paths[key] = found
        return found


def static_path(request: Request, subpath: str) -> str:
    """The URL path of ``myapp/static/<subpath>``, as ``request.static_path`` makes it."""
    paths: StaticPaths = request.registry[STATIC_PATHS]
    return paths(request, subpath)


def includeme(config: Configurator) -> None:
    buster = ContentHashCacheBuster(STATIC_SPEC)
    config.add_static_view("static", STATIC_SPEC, cache_max_age=ONE_YEAR)
    config.add_cache_buster(STATIC_SPEC, buster)
    config.registry[STATIC_PATHS] = StaticPaths(buster)
