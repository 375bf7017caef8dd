"""Writing, reading, editing, favouriting and deleting articles through the pages."""

from __future__ import annotations

import webtest

from tests.pages_support import Browser, errors, form, texts


def test_editor_page_follows_the_selectors_contract(author: Browser) -> None:
    page = author.get("/editor")
    editor = form(page, "/editor")
    assert {"title", "description", "body", "tags", "csrf_token"} <= set(editor.fields)
    assert page.html.select_one('textarea[name="body"]') is not None
    assert page.html.select_one('input[placeholder="Enter tags"]') is not None
    button = page.html.select_one('button[type="submit"]')
    assert button.get_text(strip=True) == "Publish Article"
    assert page.html.select_one("a.nav-link.active")["href"] == "/editor"


def test_publish_and_read_an_article(author: Browser) -> None:
    slug = author.write(
        "Hello pages",
        body="# Big heading\n\n- one item\n\n[a link](https://example.com)\n\nSome *emphasis*.",
        description="A short description",
        tags="alpha, beta,\ngamma",
    )
    page = author.get(f"/article/{slug}")
    assert texts(page, ".banner h1") == ["Hello pages"]
    content = page.html.select_one(".article-content")
    assert content.select_one(".article-body h1").get_text() == "Big heading"
    assert content.select_one("ul:not(.tag-list) li").get_text() == "one item"
    assert content.select_one('a[href="https://example.com"]') is not None
    assert content.select_one("em").get_text() == "emphasis"
    assert texts(page, ".article-content .tag-list .tag-default") == ["alpha", "beta", "gamma"]
    # The author sees Edit/Delete, not Follow/Favorite.
    assert "Edit Article" in texts(page, "a")
    assert any("Delete Article" in t for t in texts(page, "button"))
    assert not [t for t in texts(page, "button") if "Follow" in t or "Favorite" in t]
    assert page.html.select_one(".article-meta img")["src"].startswith("/static/default-avatar.svg")


def test_article_appears_on_home_tag_and_profile_pages(author: Browser) -> None:
    slug = author.write("Everywhere", description="Seen in lists", tags="listed")
    for url in ["/", "/tag/listed", f"/profile/{author.username}"]:
        page = author.get(url)
        preview = page.html.select_one(".article-preview")
        assert preview.select_one("h1").get_text() == "Everywhere", url
        assert preview.select_one("p").get_text() == "Seen in lists"
        assert preview.select_one(".author").get_text() == author.username
        assert preview.select_one("a.preview-link")["href"] == f"/article/{slug}"
        assert [t.get_text() for t in preview.select(".tag-list .tag-default")] == ["listed"]
    home = author.get("/")
    assert "listed" in texts(home, ".sidebar .tag-list a.tag-pill")
    tag_page = author.get("/tag/listed")
    assert texts(tag_page, ".feed-toggle .nav-link.active") == ["listed"]
    assert author.get("/tag/no-such-tag").html.select_one(".empty-feed-message") is not None


def test_editor_errors_keep_the_input(author: Browser) -> None:
    editor = form(author.get("/editor"), "/editor")
    editor["title"], editor["description"] = "", "Kept description"
    editor["body"], editor["tags"] = "Kept body", "one, two"
    result = editor.submit(status=422)
    assert "title can't be blank" in errors(result)
    again = form(result, "/editor")
    assert again["description"].value == "Kept description"
    assert again["body"].value == "Kept body"
    assert sorted(again.fields["tagList"][i].value for i in range(2)) == ["one", "two"]


def test_edit_title_and_remove_all_tags(author: Browser) -> None:
    slug = author.write("Before the edit", tags="old, tags")
    page = author.get(f"/editor/{slug}")
    editor = form(page, f"/editor/{slug}")
    assert editor["title"].value == "Before the edit"
    assert [f.value for f in editor.fields["tagList"]] == ["old", "tags"]
    editor["title"] = "After the edit"
    # Unticking a pill (what its x does without JavaScript) drops the tag.
    for box in editor.fields["tagList"]:
        box.checked = False
    result = editor.submit(status=303)
    new_slug = result.location.rsplit("/article/", 1)[1]
    page = author.get(f"/article/{new_slug}")
    assert texts(page, "h1") == ["After the edit"]
    assert page.html.select(".tag-list .tag-default") == []


def test_others_get_a_403_page_for_my_article(author: Browser, reader: Browser) -> None:
    slug = author.write("Mine only")
    page = reader.get(f"/article/{slug}")
    assert "Edit Article" not in texts(page, "a")
    assert not any("Delete Article" in t for t in texts(page, "button"))
    assert reader.get(f"/editor/{slug}", status=403).html.select_one("nav.navbar") is not None
    token = form(reader.get("/settings"), "/settings")["csrf_token"].value
    for action in [f"/editor/{slug}", f"/article/{slug}/delete"]:
        result = reader.app.post(action, {"csrf_token": token, "title": "Hijacked"}, status=403)
        assert "not yours" in result.text
    assert texts(author.get(f"/article/{slug}"), "h1") == ["Mine only"]


def test_unknown_article_is_a_404_page(author: Browser) -> None:
    for url in ["/article/no-such-article", "/editor/no-such-article"]:
        page = author.get(url, status=404)
        assert page.content_type == "text/html"
        assert page.html.select_one("nav.navbar") is not None
        assert "does not exist" in page.text


def test_delete_article(author: Browser) -> None:
    slug = author.write("Short lived")
    page = author.get(f"/article/{slug}")
    deletes = [f for f in page.forms.values() if f.action == f"/article/{slug}/delete"]
    assert len(deletes) == 2  # in the banner and under the article
    result = deletes[0].submit(status=303)
    assert result.location.endswith("/")
    author.get(f"/article/{slug}", status=404)
    assert "Short lived" not in author.get("/").text


def test_favorite_and_unfavorite(author: Browser, reader: Browser) -> None:
    slug = author.write("Likeable")
    page = reader.get(f"/article/{slug}")
    buttons = page.html.select(".article-meta button.btn-outline-primary")
    assert len(buttons) == 2
    assert "Favorite Article (0)" in " ".join(buttons[0].get_text(" ").split())
    forms_ = [f for f in page.forms.values() if f.action == f"/article/{slug}/favorite"]
    result = forms_[0].submit(status=303)
    assert result.location.endswith(f"/article/{slug}")
    page = reader.get(f"/article/{slug}")
    buttons = page.html.select(".article-meta button.btn-primary")
    assert len(buttons) == 2
    assert "Unfavorite Article (1)" in " ".join(buttons[0].get_text(" ").split())
    home_button = reader.get("/").html.select_one(".article-preview button.btn-primary")
    assert home_button.get_text(strip=True) == "1"
    favorites = reader.get(f"/profile/{reader.username}/favorites")
    assert texts(favorites, ".article-preview h1") == ["Likeable"]
    unfavorite = [f for f in page.forms.values() if f.action == f"/article/{slug}/unfavorite"]
    unfavorite[0].submit(status=303)
    page = reader.get(f"/article/{slug}")
    assert len(page.html.select(".article-meta button.btn-outline-primary")) == 2


def test_favorite_from_the_home_page_returns_there(author: Browser, reader: Browser) -> None:
    slug = author.write("From the list")
    home = reader.get("/?page=1")
    favorite = [f for f in home.forms.values() if f.action == f"/article/{slug}/favorite"]
    result = favorite[0].submit(status=303)
    assert result.location.endswith("/?page=1")


def test_visitors_buttons_lead_to_login(author: Browser, testapp: webtest.TestApp) -> None:
    slug = author.write("For visitors")
    visitor = Browser.new(testapp)
    page = visitor.get(f"/article/{slug}")
    follow = next(b for b in page.html.select("button") if "Follow" in b.get_text())
    login_form = follow.find_parent("form")
    assert login_form["method"] == "get" and login_form["action"] == "/login"
    assert login_form.select_one('input[name="next"]')["value"] == f"/article/{slug}"
    assert page.html.select_one("textarea") is None  # no comment form
    # A forged post from a visitor goes to the login page too.
    result = visitor.app.post(f"/article/{slug}/favorite", status="*")
    assert result.status_int in (303, 400)


def test_pagination(author: Browser) -> None:
    for number in range(12):
        author.write(f"Paged {number:02d}", tags="paged")
    first = author.get("/tag/paged")
    assert len(first.html.select(".article-preview")) == 10
    assert texts(first, ".pagination .page-item") == ["1", "2"]
    assert texts(first, ".pagination .page-item.active") == ["1"]
    assert first.html.select(".pagination .page-link")[1]["href"] == "/tag/paged?page=2"
    second = author.get("/tag/paged?page=2")
    assert len(second.html.select(".article-preview")) == 2
    assert texts(second, ".pagination .page-item.active") == ["2"]
    assert texts(second, ".article-preview h1") == ["Paged 01", "Paged 00"]
    # Nonsense pages are page 1; pages past the end are empty, not errors.
    assert texts(author.get("/tag/paged?page=abc"), ".page-item.active") == ["1"]
    past = author.get("/tag/paged?page=99")
    assert past.html.select_one(".empty-feed-message") is not None
    assert author.get("/?page=-3").status_int == 200


def test_your_feed_shows_followed_authors(author: Browser, reader: Browser) -> None:
    author.write("For my followers")
    feed = reader.get("/?feed=following")
    assert feed.html.select_one(".empty-feed-message") is not None
    assert texts(feed, ".feed-toggle .nav-link.active") == ["Your Feed"]
    profile = reader.get(f"/profile/{author.username}")
    form(profile, f"/profile/{author.username}/follow").submit(status=303)
    feed = reader.get("/?feed=following")
    assert texts(feed, ".article-preview h1") == ["For my followers"]
    home = reader.get("/")
    assert texts(home, ".feed-toggle .nav-link") == ["Your Feed", "Global Feed"]
    assert texts(home, ".feed-toggle .nav-link.active") == ["Global Feed"]
