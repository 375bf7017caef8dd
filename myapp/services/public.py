"""The public read model: what anyone may see, cached, plus per-user flags.

Representations here are the RealWorld JSON shapes with ``favorited`` and
``following`` set to false; :func:`personalise` merges one viewer's flags in
after the cache lookup (one query for both flags, whatever the page size).

Cache keys (see myapp.cache for the regions):

* ``articles``  ``{slug}`` — the entry records the ``people`` generation it was
  built under, a token bumped when any user's public profile changes (every
  article embeds its author); an entry from an older generation is rebuilt;
* ``profiles``  ``{username}``;
* ``lists``     ``p:{lists}:{people}:{digest of filters, limit, offset}``, a
  :class:`Page` — ``lists`` is bumped by any write that can change a list
  (article, tags, favourites);
* ``tags``      ``{lists}:all``;
* ``comments``  ``{article id}`` — an article's comments (myapp.services.comments),
  recording the ``people`` generation as ``articles`` entries do;
* ``flags``     ``{viewer id}:{token}:{ids}`` — one viewer's flags for the
  articles and authors of one page; the token is the viewer's flags token
  (generation ``flags:{id}``, read with the viewer's identity, see
  myapp.identities), bumped by that viewer's own (un)favourites and
  (un)follows, the only writes that change them.

:func:`collect` is the flush hook that turns a transaction's changes into
the keys and generations to purge once it commits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict

import orjson
from pyramid.config import Configurator
from sqlalchemy import inspect, literal, select, union_all
from sqlalchemy.orm import Session

from myapp import db_reads, identities
from myapp.cache import Cache, Pending
from myapp.db_reads import Reader, dialect_name
from myapp.models import Article, ArticleTag, Comment, Favorite, Follow, Tag, User
from myapp.services import articles, markdown, pagejson, paging
from myapp.services.articles import ArticleRow, Filters
from myapp.services.errors import NotFound

Data = dict[str, Any]


def timestamp(value: Any) -> str:
    """``2016-02-18T03:22:56.637Z``: UTC, milliseconds, as the spec shows."""
    # isoformat is twice as fast as strftime, and lists print two per article.
    return value.isoformat(timespec="milliseconds")[:23] + "Z"


def profile_data(user: User, following: bool = False) -> Data:
    return {"username": user.username, "bio": user.bio, "image": user.image, "following": following}


def article_data(m: Mapping[str, Any], with_body: bool = True) -> Data:
    """An article row's representation, from the row as a dict (``_entry``)."""
    data: Data = {
        "slug": m["slug"],
        "title": m["title"],
        "description": m["description"],
        "tagList": list(m["tag_names"]),
        # utc_text's microseconds, cut to the spec's milliseconds.
        "createdAt": m["created"][:23] + "Z",
        "updatedAt": m["updated"][:23] + "Z",
        "favorited": bool(m["favorited"]),
        "favoritesCount": m["favorites_count"],
        "author": {
            "username": m["username"],
            "bio": m["bio"],
            "image": m["image"],
            "following": bool(m["following"]),
        },
    }
    if with_body:
        data["body"] = m["body"]
    return data


def _entry(m: ArticleRow) -> Data:
    """A single article's cache entry: the representation, the ids that
    flags need, and the body as sanitized HTML (list pages are ``Page``s)."""
    return {
        "id": m["id"],
        "author_id": m["author_id"],
        "article": article_data(m),
        "body_html": markdown.render(m["body"]),
    }


class Page(TypedDict):
    """One page of an article list, as the cache keeps it.

    ``json``: the articles (``article_data`` without bodies), a JSON array
    written by Postgres (myapp.services.pagejson) or, on SQLite, by orjson;
    ``ids`` and ``author_ids`` in page order (a viewer's flags); the last
    article's ``created`` (its keyset cursor: :func:`page_cursor`); the
    list's ``count``; ``personal``: the flags in ``json`` are the viewer's
    own (the feed), not the stored ones.
    """

    json: str
    ids: list[int]
    author_ids: list[int]
    last_created: str | None
    count: int
    personal: bool


def read_page(db: Reader, viewer: User | None, filters: Filters, limit: int, offset: int) -> Page:
    """One list page as ``viewer`` sees it (None: the stored flags), in one
    statement: its JSON written by Postgres (myapp.services.pagejson), or on
    SQLite by :func:`page_of_rows`."""
    if dialect_name(db) != "postgresql":
        rows, count = articles.list_articles(db, viewer, filters, limit, offset)
        return page_of_rows(rows, count, personal=viewer is not None)
    query = articles.list_query(db, viewer, filters, limit, offset)
    row = db_reads.rows(db, pagejson.statement(query.statement), query.values)[0]
    ids = row["ids"] or []  # an aggregate over no rows is null
    return {
        "json": row["articles"] or "[]",
        "ids": ids,
        "author_ids": row["author_ids"] or [],
        "last_created": row["last_created"],
        "count": articles.list_count(db, query, row.get("total"), not ids),
        "personal": viewer is not None,
    }


def page_of_rows(rows: Sequence[ArticleRow], count: int, personal: bool) -> Page:
    """The page of these rows (``articles.list_articles``), built in Python."""
    return {
        "json": orjson.dumps([article_data(row, with_body=False) for row in rows]).decode(),
        "ids": [row["id"] for row in rows],
        "author_ids": [row["author_id"] for row in rows],
        "last_created": rows[-1]["created"] if rows else None,
        "count": count,
        "personal": personal,
    }


def page_entries(page: Page) -> list[Data]:
    """The page's articles as entries, :func:`personalise`'s input."""
    docs = orjson.loads(page["json"])
    entries = [
        {"id": ident, "author_id": author, "article": doc}
        for ident, author, doc in zip(page["ids"], page["author_ids"], docs, strict=True)
    ]
    if page["personal"]:
        for entry in entries:
            entry["personal"] = True
    return entries


def page_cursor(page: Page) -> str | None:
    """The keyset cursor just after the page's last article (myapp.services.paging)."""
    if page["last_created"] is None:
        return None
    return paging.cursor_of(page["last_created"], page["ids"][-1])


# -- reads -------------------------------------------------------------------


def article(db: Reader, cache: Cache, slug: str, fresh: bool = False) -> Data:
    """An article entry by slug; ``fresh`` reads the database (after a write)."""

    def load() -> Data | None:
        try:
            return _entry(articles.get_view(db, None, slug))
        except NotFound:
            return None

    if fresh:
        entry = load()
    else:
        people = cache.generation("people")

        def load_current() -> Data:
            return {"people": people, "entry": load()}

        cached = cache.get_or_create(
            "articles", slug, load_current, valid=lambda value: value["people"] == people
        )
        entry = cached["entry"]
    if entry is None:
        raise NotFound("article")
    return entry


def article_page(db: Reader, cache: Cache, filters: Filters, limit: int, offset: int) -> Page:
    """One page of a public list (not the personal feed), with its total count."""
    shape = json.dumps(
        [filters.tag, filters.author, filters.favorited, filters.before, limit, offset]
    )
    digest = hashlib.sha1(shape.encode(), usedforsecurity=False).hexdigest()
    lists, people = cache.generations("lists", "people")
    # ``p:``: entries are Pages (a release that cached lists of dicts used no prefix).
    key = f"p:{lists}:{people}:{digest}"
    return cache.get_or_create("lists", key, lambda: read_page(db, None, filters, limit, offset))


def feed_page(
    db: Session, viewer: User, limit: int, offset: int, before: str | None = None
) -> Page:
    """The viewer's own feed: personal, so never shared through the cache."""
    return read_page(db, viewer, Filters(feed_of=viewer.id, before=before), limit, offset)


def profile(db: Session, cache: Cache, username: str) -> Data:
    def load() -> Data | None:
        user = db.scalar(select(User).where(User.username == username))
        return None if user is None else {"id": user.id, "profile": profile_data(user)}

    entry = cache.get_or_create("profiles", username, load)
    if entry is None:
        raise NotFound("profile")
    return entry


def _tags_key(cache: Cache) -> str:
    # Versioned by ``lists``: every write that adds, removes or retags an
    # article bumps it (collect, below), so each process may keep the list.
    return f"{cache.generation('lists')}:all"


def tags(db: Reader, cache: Cache) -> list[str]:
    return cache.get_or_create("tags", _tags_key(cache), lambda: articles.all_tags(db))


def refresh_tags(db: Session, cache: Cache) -> list[str]:
    """Recount the popular tags now and store them (the periodic warm-up job),
    so no reader pays for the recount when the entry expires."""
    value = articles.all_tags(db)
    if cache.enabled:
        cache.regions["tags"].set(_tags_key(cache), value)
    return value


# -- per-user flags ----------------------------------------------------------


def flags(
    db: Session,
    viewer: User | None,
    entries: Iterable[Data],
    cache: Cache | None = None,
    token: str | None = None,
) -> tuple[set[int], set[int]]:
    """(favourited article ids, followed author ids) of ``viewer``: one query,
    or a cache hit when ``token`` (the viewer's flags token) is known."""
    entries = list(entries)
    if viewer is None or not entries:
        return set(), set()
    article_ids = sorted({e["id"] for e in entries})
    author_ids = sorted({e["author_id"] for e in entries})
    if cache is None or not cache.enabled or token is None:
        return _flags_query(db, viewer, article_ids, author_ids)
    ids = json.dumps([article_ids, author_ids]).encode()
    digest = hashlib.sha1(ids, usedforsecurity=False).hexdigest()
    key = f"{viewer.id}:{token}:{digest}"

    def load() -> tuple[list[int], list[int]]:
        favorited, following = _flags_query(db, viewer, article_ids, author_ids)
        return sorted(favorited), sorted(following)

    favorited, following = cache.get_or_create("flags", key, load)
    return set(favorited), set(following)


def _flags_query(
    db: Session, viewer: User, article_ids: list[int], author_ids: list[int]
) -> tuple[set[int], set[int]]:
    query = union_all(
        select(literal("f"), Favorite.article_id).where(
            Favorite.user_id == viewer.id, Favorite.article_id.in_(article_ids)
        ),
        select(literal("a"), Follow.followed_id).where(
            Follow.follower_id == viewer.id, Follow.followed_id.in_(author_ids)
        ),
    )
    favorited: set[int] = set()
    following: set[int] = set()
    for kind, ident in db.execute(query):
        (favorited if kind == "f" else following).add(ident)
    return favorited, following


def personalise(
    db: Session | None,
    viewer: User | None,
    entries: list[Data],
    cache: Cache | None = None,
    token: str | None = None,
) -> list[Data]:
    """The entries' representations with ``viewer``'s flags; ``token``: the
    viewer's flags token, see :func:`flags`.

    Read-only: for anyone logged out (whose flags are the stored ones, all
    false) and for personal entries these ARE the entries' dicts, maybe
    cached ones; a viewer's flags go into copies. ``db`` is needed only for a
    viewer (callers pass None for nobody: making a request's Session for an
    anonymous read cost ~5% of it).
    """
    if viewer is None or any(e.get("personal") for e in entries):
        return [e["article"] for e in entries]
    if db is None:
        raise ValueError("a viewer's flags are read from the database: db is required")
    favorited, following = flags(db, viewer, entries, cache, token)
    result = []
    for entry in entries:
        data = dict(entry["article"])
        data["favorited"] = entry["id"] in favorited
        data["author"] = {**data["author"], "following": entry["author_id"] in following}
        result.append(data)
    return result


# -- purging -----------------------------------------------------------------


def _old_and_new(obj: Any, attribute: str) -> set[str]:
    history = inspect(obj).attrs[attribute].history
    values = {*history.added, *history.deleted, *history.unchanged}
    return {v for v in values if v}


def collect(session: Session, changed: Iterable[Any], pending: Pending) -> None:
    """Flush hook: what this transaction's changes make stale (see module doc)."""
    for obj in changed:
        if isinstance(obj, Article | ArticleTag | Tag):
            # The previous release's tags key (rolling deploys; drop next release).
            pending.add("tags", "all")
        if isinstance(obj, Article):
            pending.add("articles", *_article_keys(session, obj.id, _old_and_new(obj, "slug")))
            pending.generations.add("lists")
            if obj.id is not None:
                # Deleting an article deletes its comments in the database
                # (ON DELETE CASCADE), unseen here; and SQLite may give its id
                # to the next article.
                pending.add("comments", str(obj.id))
        elif isinstance(obj, ArticleTag | Favorite):
            pending.add("articles", *_article_keys(session, obj.article_id))
            pending.generations.add("lists")
            if isinstance(obj, Favorite):
                pending.generations.update(identities.flags_generations(obj.user_id))
        elif isinstance(obj, Follow):
            pending.generations.update(identities.flags_generations(obj.follower_id))
        elif isinstance(obj, Comment):
            # The article's comment list (myapp.services.comments).
            pending.add("comments", str(obj.article_id))
        elif isinstance(obj, Tag):
            pending.generations.add("lists")
        elif isinstance(obj, User):
            pending.add("profiles", *_old_and_new(obj, "username"))
            pending.generations.add(identities.user_generation(obj.id))
            # The previous release's version key (rolling deploys; drop next release).
            pending.add("identities", f"ver:{obj.id}")
            # Every article embeds its author's profile.
            pending.generations.update({"people", "lists"})


def _article_keys(session: Session, article_id: int | None, slugs: Iterable[str] = ()) -> set[str]:
    """Keys of ``article_id``'s cached entries: its slugs, old and new."""
    slugs = set(slugs)
    loaded = session.identity_map.get(session.identity_key(Article, article_id))
    if loaded is not None:
        slugs |= _old_and_new(loaded, "slug")
    return slugs


def includeme(config: Configurator) -> None:
    config.registry["cache"].collectors.append(collect)
