"""The browsable Conduit: server-rendered HTML pages.

Routes follow the RealWorld front-end contract (SELECTORS.md / routing.md);
the actions behind buttons (favourite, follow, delete, comment, logout) are
POST-only routes of their own, so every page works as plain HTML forms and
links, and scripts (myapp/static/js) only enhance them.

Modules: one per page family (home, auth, settings, editor, article,
profile), ``errors`` for the error pages, ``reads`` for what pages read,
``forms`` for reading posts, ``helpers`` for templates, ``assets`` for
/static, ``headers`` for the security headers. Views register at
``config.scan("myapp.pages")``.
"""

from __future__ import annotations

from pyramid.config import Configurator

ROUTES = [
    ("home", "/"),
    ("tag", "/tag/{tag:.+}"),  # tags may contain "/" (ci/cd)
    ("login", "/login"),
    ("register", "/register"),
    ("logout", "/logout"),
    ("settings", "/settings"),
    ("export.start", "/settings/export"),
    ("export.status", "/settings/exports/{id}.json"),
    ("export.download", "/settings/exports/{id}/download"),
    ("export", "/settings/exports/{id}"),
    ("editor", "/editor"),
    ("editor.edit", "/editor/{slug}"),
    ("article", "/article/{slug}"),
    ("article.delete", "/article/{slug}/delete"),
    ("article.favorite", "/article/{slug}/favorite"),
    ("article.unfavorite", "/article/{slug}/unfavorite"),
    ("comments", "/article/{slug}/comments"),
    ("comment.delete", "/article/{slug}/comments/{id}/delete"),
    ("profile", "/profile/{username}"),
    ("profile.favorites", "/profile/{username}/favorites"),
    ("profile.follow", "/profile/{username}/follow"),
    ("profile.unfollow", "/profile/{username}/unfollow"),
]


def includeme(config: Configurator) -> None:
    config.add_jinja2_search_path("myapp:templates", name=".jinja2")
    config.include("myapp.pages.assets")
    config.include("myapp.pages.fragments")
    config.include("myapp.pages.headers")
    config.include("myapp.pages.helpers")
    for name, pattern in ROUTES:
        config.add_route(name, pattern)
