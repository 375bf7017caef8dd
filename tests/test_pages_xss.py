"""Script tags and javascript: links in anything people write are shown as
text or stripped, never run: titles, descriptions, bodies, tags, bios and
comments."""

from __future__ import annotations

import webtest
from bs4 import BeautifulSoup

from tests.pages_support import Browser, form, state

SCRIPT = "<script>alert('xss')</script>"
IMG = '<img src=x onerror="alert(1)">'


def assert_inert(html: str) -> None:
    """No script runs: ours are the only <script>s, no handler, no javascript: URL."""
    soup = BeautifulSoup(html, "html.parser")
    scripts = soup.find_all("script")
    assert [(s.get("type"), s.get("src", "").split("?")[0]) for s in scripts] == [
        ("application/json", ""),
        (None, "/static/js/conduit.js"),
    ]
    for node in soup.find_all(True):
        for name, value in node.attrs.items():
            assert not name.lower().startswith("on"), (node.name, name)
            values = value if isinstance(value, list) else [value]
            for item in values:
                assert not str(item).strip().lower().startswith("javascript:"), (node.name, name)
    # The JSON data block cannot be broken out of either.
    assert "</script><" not in soup.select_one("script#conduit-state").decode_contents()


def test_article_fields_and_tags_are_text(testapp: webtest.TestApp) -> None:
    author = Browser(testapp)
    author.register()
    slug = author.write(
        f"Title {SCRIPT}",
        description=f"Description {IMG}",
        body=(
            f"Body {SCRIPT}\n\n[click me](javascript:alert(1))\n\n{IMG}\n\n"
            '<a href="javascript:alert(2)">raw link</a> <iframe src="https://evil.example"></iframe>'
        ),
        tags=f"{SCRIPT}, <b>bold</b>",
    )
    for url in [f"/article/{slug}", "/", f"/profile/{author.username}", f"/editor/{slug}"]:
        page = author.get(url)
        assert_inert(page.text)
    page = author.get(f"/article/{slug}")
    assert page.html.select_one(".banner h1").get_text() == f"Title {SCRIPT}"
    assert "&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;" in page.text
    body = page.html.select_one(".article-body")
    assert body.find("iframe") is None and body.find("script") is None
    assert "click me" in body.get_text()
    tags = [t.get_text() for t in page.html.select(".article-content .tag-default")]
    assert tags == [SCRIPT, "<b>bold</b>"]
    # The tag page for such a tag is a normal page too.
    tag_page = author.get("/tag/" + "%3Cscript%3Ealert('xss')%3C%2Fscript%3E")
    assert_inert(tag_page.text)
    assert tag_page.html.select_one(".article-preview h1").get_text() == f"Title {SCRIPT}"


def test_bio_username_and_comment_are_text(testapp: webtest.TestApp) -> None:
    author = Browser(testapp)
    author.register()
    settings = form(author.get("/settings"), "/settings")
    settings["bio"] = f"Bio {SCRIPT}"
    settings.submit(status=303)
    profile = author.get(f"/profile/{author.username}")
    assert_inert(profile.text)
    assert f"Bio {SCRIPT}" in profile.html.select_one(".user-info").get_text()

    slug = author.write("Comment target")
    post = form(author.get(f"/article/{slug}"), f"/article/{slug}/comments")
    post["body"] = f"Comment {SCRIPT} {IMG}"
    post.submit(status=303)
    page = author.get(f"/article/{slug}")
    assert_inert(page.text)
    comment = page.html.select_one(".card:not(.comment-form) .card-block").get_text()
    assert SCRIPT in comment and IMG in comment
    # Re-rendered forms escape what was typed.
    settings = form(author.get("/settings"), "/settings")
    settings["image"] = '"><script>alert(1)</script>'
    result = settings.submit(status=422)
    assert_inert(result.text)


def test_debug_state_cannot_break_out_of_its_script_block(testapp: webtest.TestApp) -> None:
    author = Browser(testapp)
    author.register()
    settings = form(author.get("/settings"), "/settings")
    settings["bio"] = "</script><script>alert(1)</script>"
    settings.submit(status=303)
    page = author.get("/")
    assert_inert(page.text)
    assert state(page)["user"]["bio"] == "</script><script>alert(1)</script>"
