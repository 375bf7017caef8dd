"""myapp.headers.set_headers: what ``response.headers.update`` does, in one pass."""

from __future__ import annotations

from pyramid.response import Response

from myapp.headers import set_headers


def test_it_replaces_and_adds_like_update() -> None:
    response = Response(body=b"{}", content_type="application/json")
    response.headers["x-replica"] = "old"
    response.headers["Vary"] = "Cookie"
    set_headers(response, {"X-Replica": "web-1", "X-Request-ID": "abc"})
    expected = Response(body=b"{}", content_type="application/json")
    expected.headers["x-replica"] = "old"
    expected.headers["Vary"] = "Cookie"
    expected.headers.update({"X-Replica": "web-1", "X-Request-ID": "abc"})
    assert sorted(response.headerlist) == sorted(expected.headerlist)
    assert response.headers.getall("X-Replica") == ["web-1"]
    assert response.headers["Vary"] == "Cookie" and response.headers["X-Request-ID"] == "abc"
    assert response.content_length == 2
