"""GET /api/tags."""

from __future__ import annotations

from tests.conftest import Api


def test_tags_in_use_most_used_first(api: Api) -> None:
    assert api.get("/api/tags").json == {"tags": []}
    user = api.register()
    api.article(user["token"], tagList=["rare", "common"])
    api.article(user["token"], tagList=["common", "middle"])
    api.article(user["token"], tagList=["common", "middle"])
    assert api.get("/api/tags").json == {"tags": ["common", "middle", "rare"]}


def test_tags_of_deleted_or_edited_articles_disappear(api: Api) -> None:
    user = api.register()
    token = user["token"]
    gone = api.article(token, tagList=["gone"])
    edited = api.article(token, tagList=["before"])
    api.delete(f"/api/articles/{gone['slug']}", token, status=204)
    api.put(f"/api/articles/{edited['slug']}", {"article": {"tagList": ["after"]}}, token)
    assert api.get("/api/tags").json == {"tags": ["after"]}


def test_tags_do_not_depend_on_the_caller(api: Api) -> None:
    # The tag cloud is the same for everyone (and so cacheable): the view
    # never looks at the Authorization header.
    user = api.register()
    api.article(user["token"], tagList=["t"])
    expected = {"tags": ["t"]}
    assert api.get("/api/tags").json == expected
    assert api.get("/api/tags", user["token"]).json == expected
    assert api.get("/api/tags", "garbage").json == expected
