"""Comments, profiles, following and settings through the pages."""

from __future__ import annotations

import webtest

from tests.conftest import QueryCounter
from tests.pages_support import Browser, errors, form, texts


def comments(page: webtest.TestResponse) -> list[str]:
    return texts(page, ".card:not(.comment-form) .card-block")


def test_comment_post_and_delete(author: Browser, reader: Browser) -> None:
    slug = author.write("Discuss")
    page = reader.get(f"/article/{slug}")
    comment_form = page.html.select_one("form.card.comment-form")
    assert comment_form.select_one('textarea[placeholder="Write a comment..."]') is not None
    assert comment_form.select_one("button").get_text(strip=True) == "Post Comment"
    assert "default-avatar.svg" in comment_form.select_one("img.comment-author-img")["src"]
    post = form(page, f"/article/{slug}/comments")
    post["body"] = "First!\nOn two lines."
    result = post.submit(status=303)
    assert f"/article/{slug}#comment-" in result.location
    page = reader.get(f"/article/{slug}")
    assert comments(page) == ["First! On two lines."]
    card = page.html.select(".card:not(.comment-form)")[0]
    assert card.select_one(".comment-author:not(:has(img))").get_text() == reader.username
    # Only the comment's author gets the bin.
    assert card.select_one(".mod-options i.ion-trash-a") is not None
    assert author.get(f"/article/{slug}").html.select_one(".mod-options") is None
    delete_action = card.select_one(".mod-options form")["action"]
    form(page, delete_action).submit(status=303)
    assert comments(reader.get(f"/article/{slug}")) == []


def test_a_warm_article_page_reads_no_sql(
    author: Browser, reader: Browser, testapp: webtest.TestApp, queries: QueryCounter
) -> None:
    """The article, its body and its comments come from the cache: no SQL
    for anyone logged out, none for a viewer whose flags are cached."""
    slug = author.write("Cached")
    post = form(reader.get(f"/article/{slug}"), f"/article/{slug}/comments")
    post["body"] = "Cached too"
    post.submit(status=303)
    for browser in (testapp, reader):
        first = browser.get(f"/article/{slug}", status=200)
        queries.reset()
        again = browser.get(f"/article/{slug}", status=200)
        assert queries.count == 0, queries.statements
        assert comments(again) == comments(first) == ["Cached too"]


def test_blank_comment_keeps_the_page_and_shows_the_error(author: Browser) -> None:
    slug = author.write("Quiet")
    post = form(author.get(f"/article/{slug}"), f"/article/{slug}/comments")
    post["body"] = "   "
    result = post.submit(status=422)
    assert errors(result) == ["body can't be blank"]
    assert result.html.select_one(".article-content") is not None
    assert form(result, f"/article/{slug}/comments")["body"].value == "   "


def test_deleting_someone_elses_comment_is_a_403_page(author: Browser, reader: Browser) -> None:
    slug = author.write("Guarded")
    post = form(reader.get(f"/article/{slug}"), f"/article/{slug}/comments")
    post["body"] = "Not yours to delete"
    post.submit(status=303)
    page = reader.get(f"/article/{slug}")
    action = page.html.select_one(".mod-options form")["action"]
    token = form(author.get(f"/article/{slug}"), f"/article/{slug}/comments")["csrf_token"].value
    result = author.app.post(action, {"csrf_token": token}, status=403)
    assert "not yours" in result.text
    assert comments(reader.get(f"/article/{slug}")) == ["Not yours to delete"]
    for bad in ["999999", "abc", "99999999999999999999"]:
        author.app.post(f"/article/{slug}/comments/{bad}/delete", {"csrf_token": token}, status=404)


def test_profile_page(author: Browser, reader: Browser) -> None:
    author.write("On my profile")
    page = reader.get(f"/profile/{author.username}")
    assert texts(page, "h4") == [author.username]
    assert "default-avatar.svg" in page.html.select_one(".user-info img.user-img")["src"]
    buttons = [b for b in texts(page, "button") if "ollow" in b]
    assert buttons == [f"Follow {author.username}"]
    assert page.html.select_one('.user-info a[href="/settings"]') is None
    assert texts(page, ".articles-toggle .nav-link.active") == ["My Articles"]
    assert texts(page, ".article-preview h1") == ["On my profile"]
    favorited = page.html.select_one(".articles-toggle a.nav-link:-soup-contains('Favorited')")
    assert favorited["href"] == f"/profile/{author.username}/favorites"
    favorites = reader.get(f"/profile/{author.username}/favorites")
    assert texts(favorites, ".articles-toggle .nav-link.active") == ["Favorited Articles"]
    assert favorites.html.select_one(".empty-feed-message") is not None


def test_own_profile_offers_settings_not_follow(author: Browser) -> None:
    page = author.get(f"/profile/{author.username}")
    link = page.html.select_one('.user-info a[href="/settings"]')
    assert "Edit Profile Settings" in link.get_text()
    assert not [b for b in texts(page, "button") if "ollow" in b]
    assert page.html.select_one("nav a.nav-link.active")["href"] == f"/profile/{author.username}"


def test_follow_and_unfollow(author: Browser, reader: Browser) -> None:
    page = reader.get(f"/profile/{author.username}")
    form(page, f"/profile/{author.username}/follow").submit(status=303)
    page = reader.get(f"/profile/{author.username}")
    assert [b for b in texts(page, "button") if "ollow" in b] == [f"Unfollow {author.username}"]
    form(page, f"/profile/{author.username}/unfollow").submit(status=303)
    page = reader.get(f"/profile/{author.username}")
    assert [b for b in texts(page, "button") if "ollow" in b] == [f"Follow {author.username}"]


def test_follow_from_article_page_returns_there(author: Browser, reader: Browser) -> None:
    slug = author.write("Follow me from here")
    page = reader.get(f"/article/{slug}")
    follows = [f for f in page.forms.values() if f.action == f"/profile/{author.username}/follow"]
    result = follows[0].submit(status=303)
    assert result.location.endswith(f"/article/{slug}")
    page = reader.get(f"/article/{slug}")
    assert f"Unfollow {author.username}" in texts(page, "button")


def test_following_yourself_is_an_error_page_not_a_500(author: Browser) -> None:
    token = form(author.get("/settings"), "/settings")["csrf_token"].value
    result = author.app.post(
        f"/profile/{author.username}/follow", {"csrf_token": token}, status=422
    )
    assert "cannot follow yourself" in result.text


def test_unknown_profile_is_a_404_page(reader: Browser) -> None:
    for url in ["/profile/nobody-here", "/profile/nobody-here/favorites"]:
        page = reader.get(url, status=404)
        assert "That profile does not exist" in page.text


def test_settings_page_and_update(author: Browser) -> None:
    page = author.get("/settings")
    settings = form(page, "/settings")
    assert settings["username"].value == author.username
    assert settings["email"].value == author.email
    assert settings["password"].value == ""
    assert page.html.select_one('button[type="submit"]').get_text(strip=True) == "Update Settings"
    logout = page.html.select_one("button.btn-outline-danger")
    assert logout.get_text(strip=True) == "Or click here to logout."
    settings["bio"] = "I write things."
    settings["image"] = "https://example.com/me.png"
    result = settings.submit(status=303)
    assert result.location.endswith(f"/profile/{author.username}")
    profile = author.get(f"/profile/{author.username}")
    assert "I write things." in texts(profile, ".user-info")[0]
    assert profile.html.select_one(".user-img")["src"] == "https://example.com/me.png"
    assert profile.html.select_one("nav img.user-pic")["src"] == "https://example.com/me.png"
    # Clearing the image brings the default avatar back.
    settings = form(author.get("/settings"), "/settings")
    settings["image"] = ""
    settings.submit(status=303)
    profile = author.get(f"/profile/{author.username}")
    assert "default-avatar.svg" in profile.html.select_one(".user-img")["src"]


def test_rename_keeps_the_session(author: Browser) -> None:
    settings = form(author.get("/settings"), "/settings")
    settings["username"] = f"{author.username}x"
    result = settings.submit(status=303)
    assert result.location.endswith(f"/profile/{author.username}x")
    assert author.get("/").html.select_one(f'nav a[href="/profile/{author.username}x"]')


def test_settings_errors_keep_the_input(author: Browser, reader: Browser) -> None:
    settings = form(author.get("/settings"), "/settings")
    settings["image"] = "javascript:alert(1)"
    settings["username"] = reader.username
    settings["bio"] = "Kept bio"
    result = settings.submit(status=422)
    assert "image must be an http(s) URL" in errors(result)
    again = form(result, "/settings")
    assert again["bio"].value == "Kept bio"
    assert again["image"].value == "javascript:alert(1)"
    settings = form(author.get("/settings"), "/settings")
    settings["username"] = reader.username
    assert errors(settings.submit(status=422)) == ["username has already been taken"]
    # Nothing was changed.
    assert author.get("/settings").html.select_one('input[name="username"]')["value"] == (
        author.username
    )


def test_password_change_and_blank_password(author: Browser) -> None:
    settings = form(author.get("/settings"), "/settings")
    settings["bio"] = "No new password"
    settings.submit(status=303)
    author.logout()
    author.login(author.email)  # the old password still works
    settings = form(author.get("/settings"), "/settings")
    settings["password"] = "newpass123"
    settings.submit(status=303)
    author.logout()
    author.login(author.email, status=422)
    author.login(author.email, "newpass123")
