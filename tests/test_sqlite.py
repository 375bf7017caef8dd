"""The embedded default (``make run``): the same API on SQLite, migrated by Alembic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import webtest

from myapp.config import configure
from myapp.scripts import migrate
from tests.conftest import ROOT, Api, base_settings


def test_the_api_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'conduit.sqlite'}"
    migrate.upgrade(str(ROOT / "development.ini"), url)
    settings: dict[str, Any] = base_settings(url)
    api = Api(webtest.TestApp(configure(settings).make_wsgi_app()))
    author, reader = api.register(), api.register()
    first = api.article(author["token"], tagList=["b", "a"])
    api.article(author["token"], tagList=["c"])
    api.post(f"/api/articles/{first['slug']}/favorite", None, reader["token"], status=200)
    listed = api.get("/api/articles", reader["token"]).json
    assert listed["articlesCount"] == 2
    assert [a["tagList"] for a in listed["articles"]] == [["c"], ["b", "a"]]
    assert [a["favorited"] for a in listed["articles"]] == [False, True]
    single = api.get(f"/api/articles/{first['slug']}").json["article"]
    assert single["tagList"] == ["b", "a"]
    assert single["createdAt"].endswith("Z")
    assert sorted(api.get("/api/tags").json["tags"]) == ["a", "b", "c"]
