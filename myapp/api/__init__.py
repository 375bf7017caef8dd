"""The RealWorld JSON API, mounted under /api by myapp.config.

Routes are declared here in one list; views live in one module per
resource (users, profiles, articles, comments, tags) and register
themselves only when ``config.scan`` runs.
"""

from __future__ import annotations

from pyramid.config import Configurator

ROUTES = [
    ("api.users", "/users"),
    ("api.login", "/users/login"),
    ("api.user", "/user"),
    ("api.profile", "/profiles/{username}"),
    ("api.follow", "/profiles/{username}/follow"),
    ("api.feed", "/articles/feed"),
    ("api.articles", "/articles"),
    ("api.article", "/articles/{slug}"),
    ("api.favorite", "/articles/{slug}/favorite"),
    ("api.comments", "/articles/{slug}/comments"),
    ("api.comment", "/articles/{slug}/comments/{id}"),
    ("api.tags", "/tags"),
    # Background jobs (not RealWorld): myapp/api/jobs.py, jobs-openapi.yml.
    ("api.exports", "/user/exports"),
    ("api.export_download", "/user/exports/{id}/download"),
    ("api.job", "/jobs/{id}"),
]


def includeme(config: Configurator) -> None:
    for name, pattern in ROUTES:
        config.add_route(name, pattern)
    config.include("myapp.api.http")
