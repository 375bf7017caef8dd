"""bench/inprocess.py: CPU per request of the app called in-process."""

from __future__ import annotations

from typing import Any

import pytest

from bench import inprocess


def test_a_request_is_served_and_costs_some_cpu(testapp: Any) -> None:
    app = testapp.app
    status, body = inprocess.call(app, "/api/tags?x=1")
    assert status.startswith("200") and b'"tags"' in body
    assert inprocess.cpu_per_request(app, "/healthz", 20) > 0


def test_an_error_answer_is_not_measured(testapp: Any) -> None:
    with pytest.raises(RuntimeError, match="404"):
        inprocess.cpu_per_request(testapp.app, "/api/no-such-thing", 1)


def test_the_environ_is_a_get_with_its_query_string() -> None:
    environ = inprocess.environ("/api/articles?limit=20&tag=x")
    assert environ["REQUEST_METHOD"] == "GET"
    assert (environ["PATH_INFO"], environ["QUERY_STRING"]) == ("/api/articles", "limit=20&tag=x")
    assert environ["wsgi.input"].read() == b""


def test_headers_go_into_the_environ_as_gunicorn_names_them() -> None:
    name, value = inprocess.header_of("X-Request-Id:  abc ")
    environ = inprocess.environ("/", {name: value, "Authorization": "Token t"})
    assert environ["HTTP_X_REQUEST_ID"] == "abc"
    assert environ["HTTP_AUTHORIZATION"] == "Token t"
    assert inprocess.environ("/", {"Content-Type": "text/plain"})["CONTENT_TYPE"] == "text/plain"
    with pytest.raises(Exception, match="not a header"):
        inprocess.header_of("no colon")


def test_a_logged_in_request_is_measured_as_that_viewer(testapp: Any, api: Any) -> None:
    token = api.register()["token"]
    status, body = inprocess.call(testapp.app, "/api/user", {"Authorization": f"Token {token}"})
    assert status.startswith("200") and b'"token"' in body
    with pytest.raises(RuntimeError, match="401"):
        inprocess.cpu_per_request(testapp.app, "/api/user", 1)
