"""The ``json`` renderer (myapp.renderers): orjson, with Pyramid's hooks."""

from __future__ import annotations

import json
from typing import Any

from pyramid.config import Configurator
from pyramid.renderers import render
from pyramid.testing import DummyRequest, setUp, tearDown


class WithJson:
    def __json__(self, request: Any) -> dict[str, str]:
        return {"via": "__json__"}


def test_the_renderer_keeps_pyramid_hooks_and_json_semantics() -> None:
    config: Configurator = setUp()
    try:
        config.include("myapp.renderers")
        value = {"text": "naïve “quotes”", 1: [None, True, 1.5], "object": WithJson()}
        body = render("json", value, request=DummyRequest())
    finally:
        tearDown()
    # UTF-8 bytes, not escapes; int keys become strings, as json.dumps does.
    raw = body.encode() if isinstance(body, str) else body
    assert "naïve “quotes”".encode() in raw
    assert json.loads(raw) == {
        "text": "naïve “quotes”",
        "1": [None, True, 1.5],
        "object": {"via": "__json__"},
    }


def test_api_responses_are_utf8_json(api: Any) -> None:
    user = api.register()
    res = api.put("/api/user", {"user": {"bio": "café ☕"}}, user["token"], status=200)
    assert res.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "café ☕".encode() in res.body
    assert res.json["user"]["bio"] == "café ☕"
