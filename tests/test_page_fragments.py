"""Kept article previews (myapp.pages.fragments): shared by viewers who see
the same thing, each with their own flags and CSRF token, never outdated."""

from __future__ import annotations

import webtest

from myapp.localcache import LocalCache
from myapp.pages import fragments
from tests.pages_support import Browser, form


def store(browser: Browser) -> LocalCache:
    found: LocalCache = browser.app.app.registry[fragments.REGISTRY_KEY]
    return found


def preview(page: webtest.TestResponse, slug: str) -> webtest.TestResponse:
    for node in page.html.select(".article-preview"):
        if node.select_one(f'a.preview-link[href="/article/{slug}"]'):
            return node
    raise AssertionError(f"no preview of {slug}")


def test_previews_are_kept_and_each_browser_gets_its_own_token(
    author: Browser, reader: Browser
) -> None:
    slug = author.write("Kept preview", tags="kept")
    url = "/tag/kept"
    first = reader.get(url)
    kept = len(store(reader))
    second = reader.get(url)
    assert len(store(reader)) == kept  # nothing new: the preview came from the store
    assert preview(second, slug) == preview(first, slug)
    # Another browser, same article, same URL: the stored preview, its own token.
    other = Browser.new(reader.app)
    other.register()
    page = other.get(url)
    assert len(store(other)) == kept
    mine = form(second, f"/article/{slug}/favorite")["csrf_token"].value
    theirs = form(page, f"/article/{slug}/favorite")["csrf_token"].value
    assert mine == reader.app.cookies["csrf_token"] and theirs == other.app.cookies["csrf_token"]
    assert mine != theirs and fragments.HOLE not in page.text
    assert "no-store" in page.headers["Cache-Control"]
    # And the form works with it.
    form(page, f"/article/{slug}/favorite").submit(status=303)


def test_a_viewers_favourite_and_a_change_show_at_once(author: Browser, reader: Browser) -> None:
    slug = author.write("Liked preview", tags="liked")
    url = "/tag/liked"
    reader.get(url)
    form(reader.get(url), f"/article/{slug}/favorite").submit(status=303)
    mine = preview(reader.get(url), slug)
    assert mine.select_one("button.btn-primary") is not None  # favourited, 1
    assert mine.select_one("button").get_text(strip=True) == "1"
    # The author sees the new count, and no favourite of their own.
    theirs = preview(author.get(url), slug)
    assert theirs.select_one("button.btn-outline-primary").get_text(strip=True) == "1"
    editor = form(author.get(f"/editor/{slug}"), f"/editor/{slug}")
    editor["description"] = "Changed since"
    editor.submit(status=303)
    assert "Changed since" in reader.get(url).text


def test_nothing_is_kept_with_the_cache_off(author: Browser) -> None:
    registry = author.app.app.registry
    cache = registry["cache"]
    author.write("Uncached preview", tags="uncached")
    store(author).clear()
    cache.enabled = False
    try:
        assert "Uncached preview" in author.get("/tag/uncached").text
        assert len(store(author)) == 0
    finally:
        cache.enabled = True
    author.get("/tag/uncached")
    assert len(store(author)) > 0
