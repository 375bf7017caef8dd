"""The whole Conduit story in a real browser, with the selectors of the
RealWorld end-to-end contract (SELECTORS.md), on Postgres + Redis sessions.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.browser.conftest import Pages

pytestmark = pytest.mark.browser

PASSWORD = "password123"


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def register(page: Any, username: str) -> None:
    page.goto("/register")
    page.fill('input[name="username"]', username)
    page.fill('input[name="email"]', f"{username}@example.com")
    page.fill('input[name="password"]', PASSWORD)
    with page.expect_navigation():
        page.click('button[type="submit"]')
    page.wait_for_url(re.compile(r"/$"))
    assert page.locator(f'nav a[href="/profile/{username}"]').is_visible()


def login(page: Any, username: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.fill('input[name="email"]', f"{username}@example.com")
    page.fill('input[name="password"]', password)
    with page.expect_navigation():
        page.click('button[type="submit"]')


def logout(page: Any) -> None:
    page.goto("/settings")
    with page.expect_navigation():
        page.click('button:has-text("Or click here to logout")')
    page.wait_for_url(re.compile(r"/$"))


def add_tags(page: Any, *tags: str) -> None:
    for tag in tags:
        page.fill('input[placeholder="Enter tags"]', tag)
        page.press('input[placeholder="Enter tags"]', "Enter")


def publish(page: Any) -> None:
    with page.expect_navigation():
        page.click('button:has-text("Publish Article")')
    page.wait_for_url(re.compile(r"/article/.+"))


def write(page: Any, title: str, body: str, tags: tuple[str, ...] = ()) -> str:
    page.goto("/editor")
    page.fill('input[name="title"]', title)
    page.fill('input[name="description"]', f"About {title}")
    page.fill('textarea[name="body"]', body)
    add_tags(page, *tags)
    publish(page)
    return page.url.rsplit("/article/", 1)[1]


def debug(page: Any, call: str) -> Any:
    return page.evaluate(f"window.__conduit_debug__.{call}()")


def test_the_conduit_story(pages: Pages) -> None:
    first_name, second_name = unique("ada"), unique("bob")
    first = pages.visitor()

    # Register: logged in, on the home page, the debug interface agrees.
    register(first, first_name)
    assert debug(first, "getAuthState") == "authenticated"
    user = debug(first, "getCurrentUser")
    assert user["username"] == first_name and user["email"] == f"{first_name}@example.com"
    assert user["token"] == debug(first, "getToken")
    assert first.evaluate("localStorage.getItem('jwtToken')") == user["token"]
    assert "default-avatar.svg" in first.locator("nav img.user-pic").get_attribute("src")

    # Write an article with tags (pills via Enter) and markdown.
    title = unique("Scaling Pyramid ")
    slug = write(
        first,
        title,
        "# Heading\n\nSome **bold** text.\n\n- item one\n\n[docs](https://example.com)",
        ("pyramid", "scaling"),
    )
    assert first.locator(".banner h1").inner_text() == title
    content = first.locator(".article-content")
    assert content.locator("h1").inner_text() == "Heading"
    assert content.locator("strong").inner_text() == "bold"
    assert content.locator("ul:not(.tag-list) li").inner_text() == "item one"
    assert content.locator('a[href="https://example.com"]').is_visible()
    for tag in ("pyramid", "scaling"):
        assert first.locator(f'.tag-list .tag-default:has-text("{tag}")').is_visible()

    # It is on the home page and on its tag page.
    first.goto("/")
    preview = first.locator(".article-preview").first
    assert preview.locator("h1").inner_text() == title
    assert preview.locator(".author").inner_text() == first_name
    first.click('.sidebar .tag-list a:has-text("scaling")')
    first.wait_for_url(re.compile(r"/tag/scaling$"))
    assert first.locator(f'.article-preview h1:has-text("{title}")').is_visible()

    # Comment on it.
    first.goto(f"/article/{slug}")
    first.fill('textarea[placeholder="Write a comment..."]', "First comment!")
    with first.expect_navigation():
        first.click('button:has-text("Post Comment")')
    comments = first.locator(".card:not(.comment-form) .card-block")
    assert comments.all_inner_texts() == ["First comment!"]

    # A second user, in another browser, favourites the article and follows.
    second = pages.visitor()
    register(second, second_name)
    second.goto(f"/article/{slug}")
    assert not second.locator('a:has-text("Edit Article")').is_visible()
    assert not second.locator('button:has-text("Delete Article")').is_visible()
    favorite = second.locator("button.btn-outline-primary:has-text('Favorite')").first
    with second.expect_navigation():
        favorite.click()
    assert second.locator('button.btn-primary:has-text("Unfavorite")').first.is_visible()
    assert "(1)" in second.locator("button:has-text('Unfavorite')").first.inner_text()
    with second.expect_navigation():
        second.locator('button:has-text("Follow")').first.click()
    assert second.locator(f'button:has-text("Unfollow {first_name}")').first.is_visible()

    # The first user's article is in the second user's Your Feed.
    second.goto("/")
    with second.expect_navigation():
        second.click('a:has-text("Your Feed")')
    assert "feed=following" in second.url
    assert second.locator(".article-preview h1").first.inner_text() == title

    # Favorites tab of the second user's profile.
    second.goto(f"/profile/{second_name}")
    with second.expect_navigation():
        second.click('a:has-text("Favorited")')
    assert second.url.endswith(f"/profile/{second_name}/favorites")
    assert second.locator(".article-preview h1").first.inner_text() == title

    # The author edits the article: new title, one tag removed by its x.
    first.goto(f"/editor/{slug}")
    assert first.locator('input[name="title"]').input_value() == title
    first.fill('input[name="title"]', title + " (edited)")
    first.locator('.tag-list .tag-pill:has-text("pyramid") i').click()
    assert first.locator('.tag-list .tag-pill:has-text("pyramid")').count() == 0
    publish(first)
    assert first.locator(".banner h1").inner_text() == title + " (edited)"
    assert first.locator(".article-content .tag-default").all_inner_texts() == ["scaling"]
    slug = first.url.rsplit("/article/", 1)[1]

    # Settings: bio and picture show on the profile.
    first.goto("/settings")
    first.fill('textarea[name="bio"]', "I write about scaling.")
    # A picture this machine can load (it reaches no other site).
    picture = f"{pages.base_url}/static/favicon.svg"
    first.fill('input[name="image"]', picture)
    with first.expect_navigation():
        first.click('button[type="submit"]')
    first.wait_for_url(re.compile(f"/profile/{first_name}$"))
    assert "I write about scaling." in first.locator(".user-info").inner_text()
    assert first.locator(f'.user-img[src="{picture}"]').count() == 1
    assert first.locator("h4").inner_text() == first_name

    # Delete the article: back home, gone.
    first.goto(f"/article/{slug}")
    with first.expect_navigation():
        first.locator('button:has-text("Delete Article")').first.click()
    first.wait_for_url(re.compile(r"/$"))
    assert first.locator(f'h1:has-text("{title}")').count() == 0

    # Log out: the navbar offers Sign in, the debug interface agrees.
    logout(first)
    assert first.locator('a[href="/login"]').is_visible()
    assert first.locator(f'a[href="/profile/{first_name}"]').count() == 0
    assert debug(first, "getAuthState") == "unauthenticated"
    assert debug(first, "getToken") is None
    assert first.evaluate("localStorage.getItem('jwtToken')") is None

    assert pages.console_errors == []

    # Signing back in works (and a wrong password is an error on /login,
    # answered with a 422 that the console reports).
    login(first, first_name, "wrong-password")
    assert first.locator(".error-messages").is_visible()
    assert first.url.endswith("/login")
    login(first, first_name)
    first.wait_for_url(re.compile(r"/$"))
    assert first.locator(f'nav a[href="/profile/{first_name}"]').is_visible()
    first.reload()
    assert first.locator(f'nav a[href="/profile/{first_name}"]').is_visible()


def test_everything_works_without_javascript(pages: Pages) -> None:
    """Forms and links only: register, write (comma-separated tags), comment,
    favourite, follow, page through, log out."""
    author_name, reader_name = unique("nojs"), unique("reader")
    author = pages.visitor(javascript=False)
    register(author, author_name)
    author.goto("/editor")
    author.fill('input[name="title"]', unique("No script "))
    author.fill('input[name="description"]', "Plain HTML")
    author.fill('textarea[name="body"]', "Works *without* JavaScript.")
    author.fill('input[placeholder="Enter tags"]', "plain, html")
    publish(author)
    slug = author.url.rsplit("/article/", 1)[1]
    assert author.locator(".article-content .tag-default").all_inner_texts() == ["plain", "html"]
    assert author.locator(".article-content em").inner_text() == "without"

    reader = pages.visitor(javascript=False)
    register(reader, reader_name)
    reader.goto(f"/article/{slug}")
    with reader.expect_navigation():
        reader.locator('button:has-text("Favorite")').first.click()
    assert reader.locator('button:has-text("Unfavorite")').first.is_visible()
    with reader.expect_navigation():
        reader.locator('button:has-text("Follow")').first.click()
    assert reader.locator('button:has-text("Unfollow")').first.is_visible()
    reader.fill('textarea[name="body"]', "No JS needed.")
    with reader.expect_navigation():
        reader.click('button:has-text("Post Comment")')
    assert reader.locator(".card:not(.comment-form) .card-block").all_inner_texts() == [
        "No JS needed."
    ]
    with reader.expect_navigation():
        reader.locator(".mod-options i.ion-trash-a").click()
    assert reader.locator(".card:not(.comment-form)").count() == 0

    # Removing a tag without JavaScript: its x unticks the pill.
    author.goto(f"/editor/{slug}")
    author.locator('.tag-list .tag-pill:has-text("plain") i').click()
    assert not author.locator('.tag-list .tag-pill:has-text("plain")').is_visible()
    publish(author)
    assert author.locator(".article-content .tag-default").all_inner_texts() == ["html"]

    logout(reader)
    assert reader.locator('a[href="/login"]').is_visible()


def test_visitor_follow_goes_to_login_and_back(pages: Pages) -> None:
    author_name = unique("host")
    author = pages.visitor()
    register(author, author_name)
    slug = write(author, unique("Visit me "), "Hello visitors.")
    visitor = pages.visitor()
    visitor.goto(f"/article/{slug}")
    assert debug(visitor, "getAuthState") == "unauthenticated"
    with visitor.expect_navigation():
        visitor.locator('button:has-text("Follow")').first.click()
    assert re.search(r"/login\?next=", visitor.url)
    visitor_name = unique("guest")
    # Sign up from there (the login page links to it, keeping "next")...
    with visitor.expect_navigation():
        visitor.click('a:has-text("Need an account?")')
    visitor.fill('input[name="username"]', visitor_name)
    visitor.fill('input[name="email"]', f"{visitor_name}@example.com")
    visitor.fill('input[name="password"]', PASSWORD)
    with visitor.expect_navigation():
        visitor.click('button[type="submit"]')
    # ...and land back on the article.
    assert visitor.url.endswith(f"/article/{slug}")
    assert visitor.locator(f'button:has-text("Follow {author_name}")').first.is_visible()


def test_pagination_and_tag_editor(pages: Pages) -> None:
    name = unique("pager")
    page = pages.visitor()
    register(page, name)
    tag = unique("tag")
    # Pills: Enter adds one, its x removes it, a repeated tag is added once.
    page.goto("/editor")
    add_tags(page, "alpha", "beta", "alpha")
    pills = page.locator(".tag-list .tag-pill")
    assert [t.strip() for t in pills.all_inner_texts()] == ["alpha", "beta"]
    page.locator('.tag-list .tag-pill:has-text("alpha") i').click()
    assert [t.strip() for t in pills.all_inner_texts()] == ["beta"]
    for number in range(11):
        write(page, f"Page item {number:02d} {tag}", "Body.", (tag,))
    page.goto(f"/tag/{tag}")
    assert page.locator(".article-preview").count() == 10
    assert page.locator(".pagination .page-item.active").inner_text() == "1"
    with page.expect_navigation():
        page.click('.pagination .page-link:has-text("2")')
    assert page.url.endswith(f"/tag/{tag}?page=2")
    assert page.locator(".pagination .page-item.active").inner_text() == "2"
    assert page.locator(".article-preview h1").all_inner_texts() == [f"Page item 00 {tag}"]
    assert pages.console_errors == []
