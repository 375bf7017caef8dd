"""The API's tween (myapp.api.http): CORS and charset in one pass, and no
body read where no view reads one."""

from __future__ import annotations

import io

import pytest
from pyramid.request import Request
from pyramid.response import Response

from myapp.api.http import CORS_HEADERS, _api_headers, _charsetless_json, _too_large
from tests.conftest import Api


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", True),
        ("Application/JSON ; foo=bar", True),
        ("application/json; charset=utf-8", False),
        ("application/json; Charset=latin-1", False),
        ("text/html; charset=UTF-8", False),
        ("application/problem+json", False),
    ],
)
def test_which_json_lacks_a_charset(content_type: str, expected: bool) -> None:
    assert _charsetless_json(content_type) is expected


def test_headers_in_one_pass() -> None:
    response = Response(body=b"{}", content_type="application/json")
    response.headers["Access-Control-Allow-Origin"] = "https://one.example"
    response.headers["X-Kept"] = "yes"
    _api_headers(response)
    assert response.content_type == "application/json" and response.charset == "utf-8"
    assert response.headers["X-Kept"] == "yes"
    for name, value in CORS_HEADERS.items():
        assert response.headers.getall(name) == [value]
    page = Response(body=b"<p>", content_type="text/html", charset="utf-8")
    _api_headers(page)
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"


def test_the_size_check_reads_no_get_body() -> None:
    """gunicorn marks every input readable (wsgi.input_terminated): the size
    check read a GET's body too; now only bodies a view may read."""

    def request(method: str) -> Request:
        blank = Request.blank("/api/tags", method=method)
        blank.environ.pop("CONTENT_LENGTH", None)
        blank.environ.update({"wsgi.input": io.BytesIO(b"x" * 10), "wsgi.input_terminated": True})
        return blank

    get = request("GET")
    assert _too_large(get, 5) is False and get.environ["wsgi.input"].tell() == 0
    assert _too_large(request("POST"), 5) is True  # chunked, say: read up to the limit


def test_api_answers_carry_cors_and_charset(api: Api) -> None:
    res = api.app.get("/api/tags")
    assert res.headers["Access-Control-Allow-Origin"] == "*"
    assert res.headers["Content-Type"] == "application/json; charset=utf-8"
