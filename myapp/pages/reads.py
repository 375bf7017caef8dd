"""What the pages read: the shared, cached read model plus the viewer's flags.

The pages show exactly what the API returns (myapp.services.public builds the
RealWorld representations, caches the public part and merges the viewer's
``favorited``/``following`` flags in), so templates work on those dicts and a
page never disagrees with the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyramid.request import Request

from myapp import identities
from myapp.models import User
from myapp.services import comments, public, users
from myapp.services.articles import Filters

Data = dict[str, Any]

PAGE_SIZE = 10
# Far beyond any real list; keeps OFFSET (and the page links) bounded.
MAX_PAGE = 100_000
SIDEBAR_TAGS = 20


@dataclass(frozen=True)
class Page:
    """One page of an article list."""

    articles: list[Data]
    count: int
    number: int

    @property
    def last(self) -> int:
        return max(1, -(-self.count // PAGE_SIZE))


def page_number(request: Request) -> int:
    """``?page=N`` (1 for anything that is not a sensible number)."""
    raw = request.GET.get("page", "1")
    try:
        number = int(raw)
    except (TypeError, ValueError):
        return 1
    return min(max(number, 1), MAX_PAGE)


def article_list(request: Request, filters: Filters, number: int) -> Page:
    # The viewer first: their identity fetches the list generations with
    # their own tokens (myapp.identities), the page then needs no round trip.
    viewer = request.identity
    page = public.article_page(
        request.dbreads, request.cache, filters, PAGE_SIZE, (number - 1) * PAGE_SIZE
    )
    token = identities.flags_token(request, viewer)
    entries = public.page_entries(page)
    return Page(
        public.personalise(
            identities.flags_session(request, viewer), viewer, entries, request.cache, token
        ),
        page["count"],
        number,
    )


def feed(request: Request, viewer: User, number: int) -> Page:
    page = public.feed_page(request.dbsession, viewer, PAGE_SIZE, (number - 1) * PAGE_SIZE)
    entries = public.page_entries(page)
    return Page(
        public.personalise(identities.flags_session(request, viewer), viewer, entries),
        page["count"],
        number,
    )


@dataclass(frozen=True)
class ArticleView:
    """An article page's reads: the article as the viewer sees it, its
    sanitized HTML body, and its comments (``following`` for the viewer)."""

    article: Data
    body_html: str
    comments: list[Data]


def article(request: Request, slug: str) -> ArticleView:
    """The article page's reads, all from the cache when warm: no SQL for
    anyone logged out, and none for a viewer whose flags are cached."""
    db, cache = request.dbreads, request.cache
    entry = public.article(db, cache, slug)
    viewer = request.identity
    token = identities.flags_token(request, viewer)
    session = identities.flags_session(request, viewer)
    data = public.personalise(session, viewer, [entry], cache, token)[0]
    found = comments.public_list(db, cache, entry["id"])
    return ArticleView(
        data,
        entry["body_html"],
        comments.personalise(session, viewer, entry["id"], found, cache, token),
    )


def profile(request: Request, username: str) -> Data:
    """The profile as the viewer sees it (``following`` set)."""
    entry = public.profile(request.dbsession, request.cache, username)
    following = entry["id"] in users.following_ids(
        request.dbsession, request.identity, [entry["id"]]
    )
    return {**entry["profile"], "following": following}


def popular_tags(request: Request) -> list[str]:
    return public.tags(request.dbreads, request.cache)[:SIDEBAR_TAGS]
