"""Export my data through the web page: start, progress, download, owner only.

The test app runs jobs in-process right after the commit (myapp.jobs.embedded),
so by the time the redirect is followed the export has finished.
"""

from __future__ import annotations

import io
import json
import zipfile

import webtest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from tests.pages_support import Browser, form, texts


def test_export_from_the_settings_page(testapp: webtest.TestApp) -> None:
    me = Browser(testapp)
    me.register()
    slug = me.write("Exported article", body="# Hello *export*", tags="one, two")
    settings = me.get("/settings")
    started = form(settings, "/settings/export").submit(status=303)
    page = me.get(started.location)
    bar = page.html.select_one("progress.export-progress")
    assert bar is not None and bar["value"] == "100"
    assert texts(page, ".export-state") == ["succeeded"]
    status = me.get(page.html.select_one("[data-job-status-url]")["data-job-status-url"]).json
    assert status["job"]["progress"] == 100 and status["job"]["done"]
    assert status["job"]["downloadUrl"].endswith("/download")
    link = page.html.select_one(".export-download a")["href"]
    assert link == status["job"]["downloadUrl"]
    download = me.get(link)
    assert download.content_type == "application/zip"
    with zipfile.ZipFile(io.BytesIO(download.body)) as archive:
        names = set(archive.namelist())
        assert {"profile.json", "articles.json", f"articles/{slug}.md"} <= names
        articles = json.loads(archive.read("articles.json"))
        assert [a["slug"] for a in articles] == [slug]
        assert articles[0]["tagList"] == ["one", "two"]
        assert "# Hello *export*" in archive.read(f"articles/{slug}.md").decode()

    other = Browser.new(testapp)
    other.register()
    for url in (started.location, status["job"]["statusUrl"], link):
        other.get(url, status=404)
    # A visitor is sent to log in.
    visitor = Browser.new(testapp)
    assert visitor.get(started.location, status=303).location.split("?")[0].endswith("/login")


def test_export_needs_the_csrf_token(testapp: webtest.TestApp) -> None:
    me = Browser(testapp)
    me.register()
    me.app.post("/settings/export", status=400)


def test_publishing_from_the_editor_notifies_followers(
    testapp: webtest.TestApp, connection: Connection
) -> None:
    author, fan = Browser(testapp), Browser.new(testapp)
    name = author.register()
    fan.register()
    form(fan.get(f"/profile/{name}"), f"/profile/{name}/follow").submit(status=303)
    slug = author.write("News for my followers")
    article_id = connection.scalar(text("SELECT id FROM articles WHERE slug = :s"), {"s": slug})
    recipients = connection.scalars(
        text(
            "SELECT u.username FROM notifications n JOIN users u ON u.id = n.recipient_id "
            "WHERE n.article_id = :a"
        ),
        {"a": article_id},
    )
    assert list(recipients) == [fan.username]
