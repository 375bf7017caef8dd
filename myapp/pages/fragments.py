"""Rendered article previews, kept per process and addressed by their content.

A list page renders ten previews, most of its rendering time; a logged-in
page cannot be served whole (myapp.viewcache), but its previews are the
same for everyone who sees the same article from the same URL, except for
two things: whether *this* viewer has favourited it (part of the article
data here, merged by myapp.services.public.personalise) and the form's
CSRF token (one per browser).

So a preview is kept under a key made of everything it shows — the article
data as this viewer gets it, whether anyone is logged in, the page's URL
(the forms' ``next``) and the app's mount point — and the CSRF token is cut
out of the stored HTML (a placeholder) and put back on every use ("hole
punching"). A key names its content: nothing ever needs purging, and an
entry is simply not asked for once the article changes. The entries live
in the process (myapp.localcache): bounded in number and age.

Off when the application cache is off (the benchmarks' "cold") and when
templates reload (development: an edited template must show at once).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from dogpile.cache.api import NO_VALUE
from markupsafe import Markup
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.settings import asbool

from myapp.localcache import LocalCache

REGISTRY_KEY = "pages.fragments"
REGION = "preview"
# What stands for the CSRF token in a stored fragment: no token contains it.
HOLE = "\x00csrf\x00"


def previews(request: Request) -> LocalCache | None:
    """The process's preview store, or None when previews are not kept."""
    store: LocalCache | None = request.registry.get(REGISTRY_KEY)
    if store is None or not request.cache.enabled:
        return None
    return store


def key(request: Request, article: dict[str, Any], logged_in: bool) -> str:
    """Everything a preview shows, as one digest."""
    shown = json.dumps(
        [request.script_name, request.path_qs, logged_in, article],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha1(shown.encode(), usedforsecurity=False).hexdigest()


def kept(store: LocalCache, digest: str) -> str | None:
    """The stored preview (with its CSRF hole), or None."""
    found = store.get(REGION, digest)
    return None if found is NO_VALUE else found


def keep(store: LocalCache, digest: str, html: str, token: str | None) -> None:
    """Store ``html``, its CSRF ``token`` (if it holds one) cut out."""
    store.put(REGION, digest, html.replace(token, HOLE) if token else html)


def fill(html: str, token: str) -> Markup:
    """A stored preview with this browser's CSRF token put back."""
    return Markup(html.replace(HOLE, token))


def includeme(config: Configurator) -> None:
    settings = config.get_settings()
    if not asbool(settings.get("pyramid.reload_templates", False)):
        config.registry[REGISTRY_KEY] = LocalCache(
            int(settings.get("pages.preview_entries", 2048)),
            float(settings.get("pages.preview_ttl", 60)),
        )
