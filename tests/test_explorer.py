"""The API explorer and the served spec."""

from __future__ import annotations

import webtest


def test_spec_points_at_this_deployment(testapp: webtest.TestApp) -> None:
    spec = testapp.get("/api/openapi.json").json
    assert spec["servers"] == [{"url": "http://localhost/api"}]
    assert "/articles/{slug}" in spec["paths"]


def test_yaml_spec_is_served(testapp: webtest.TestApp) -> None:
    response = testapp.get("/api/openapi.yml")
    assert response.content_type == "application/yaml"
    assert "openapi: 3.1.0" in response.text


def test_docs_page_loads_swagger_from_this_app(testapp: webtest.TestApp) -> None:
    page = testapp.get("/api/docs")
    assert "SwaggerUIBundle" in page.text
    assert "cdn" not in page.text.lower()
    css = page.html.find("link", rel="stylesheet")["href"]
    js = page.html.find_all("script")[0]["src"]
    for url in (css, js):
        asset = testapp.get(url.replace("http://localhost", ""))
        assert asset.content_length and asset.content_length > 1000


def test_jobs_spec_is_served_next_to_realworlds(testapp: webtest.TestApp) -> None:
    spec = testapp.get("/api/jobs-openapi.json").json
    assert "/user/exports" in spec["paths"]
    assert spec["servers"] == [{"url": "http://localhost/api"}]
    assert "/api/jobs-openapi.json" in testapp.get("/api/docs").text
