"""A Redis-backed app for the cache tests: settings under a prefix of the
test's own, and two app instances (two replicas) sharing one Redis."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import webtest
from sqlalchemy.engine import Connection

from myapp.cache import Cache
from myapp.config import configure
from tests.conftest import Api

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_settings(app_settings: dict[str, Any]) -> dict[str, Any]:
    """Settings for an app on the shared Redis, under a prefix of this test's own."""
    settings = dict(app_settings)
    settings["redis.url"] = REDIS_URL
    settings["cache.prefix"] = f"conduit-test:{uuid.uuid4().hex[:8]}:"
    settings["_explicit"] = [*settings["_explicit"], "redis.url"]
    return settings


def make_app(settings: dict[str, Any], connection: Connection) -> webtest.TestApp:
    app = configure(settings).make_wsgi_app()
    app.registry["dbsession_factory"].configure(
        bind=connection, join_transaction_mode="create_savepoint"
    )
    return webtest.TestApp(app, extra_environ={"HTTP_HOST": "localhost"})


@pytest.fixture
def two_apps(redis_settings: dict[str, Any], connection: Connection) -> tuple[Api, Api]:
    """Two app instances (two replicas) sharing one Redis and one database."""
    return Api(make_app(redis_settings, connection)), Api(make_app(redis_settings, connection))


def cache_of(api: Api) -> Cache:
    return api.app.app.registry["cache"]
