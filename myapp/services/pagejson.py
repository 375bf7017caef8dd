"""A list page as JSON text, written by Postgres.

A page of the RealWorld list is twenty articles with their authors. Read as
rows, psycopg2 builds ~300 Python values, ``public.article_data`` forty
dicts from them, and orjson walks them all again to write the body: about
40% of an uncached list's CPU in the app process, for bytes the database
could have written. Here Postgres writes them: each row becomes a record
with the API's field names and ``json_agg`` writes the array in page order
(each record compact; a comma, a newline and a space between them), so the
driver hands over one ``str`` that the cache stores and the renderer copies
into the body as it is (``orjson.Fragment``).

The same row carries what the rest of a request needs, as plain values:
the ids and author ids (a viewer's flags, ``public.personalise``), the
creation time of the last article (the keyset cursor after it) and the
counter the page statement carries. Measured in docs/database.md ("The
cost of one uncached read", session 7). SQLite, the embedded default,
builds the same page from rows in Python (``myapp.services.public``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Select, Text, cast, func, literal_column, select, true
from sqlalchemy.types import NullType


def _record(name: str, outer: tuple[Any, ...], **fields: Any) -> Any:
    """``LATERAL (SELECT <field> AS <key>, ...) AS name`` over ``outer``'s row."""
    columns = [value.label(key) for key, value in fields.items()]
    return select(*columns).correlate(*outer).lateral(name)


@lru_cache(maxsize=256)
def statement(page: Select[Any]) -> Select[Any]:
    """``page`` (a list page's rows: ``articles._page``) as one row:
    ``articles`` (the JSON array, text), ``ids``, ``author_ids`` (in page
    order), ``last_created`` (the last article's ``created``), ``total``
    (the counter, when ``page`` carries one; null for an empty page).

    ``page`` is one of the statements ``articles._page`` builds once per
    shape, so this one is built once per shape as well (by identity).

    One sort, ``page``'s own ORDER BY, orders every aggregate: a subquery
    with ORDER BY is never flattened into the query around it, and a plain
    aggregate reads its input in order (``json_agg`` has no combine
    function, so the aggregate is never split across parallel workers).
    An ORDER BY in each of the three aggregates would sort three times:
    ~0.15 ms a page (tests/test_pagejson.py checks the order).
    """
    p = page.subquery("p")
    # Records whose JSON keys are the labels (row_to_json of a ROW(...)
    # would say f1, f2...). LATERAL subqueries without FROM: the planner
    # folds them into the aggregate's input, no join is run.
    author = _record(
        "author",
        (p,),
        username=p.c.username,
        bio=p.c.bio,
        image=p.c.image,
        following=p.c.following,
    )
    # utc_text's microseconds, cut to the spec's milliseconds (as public.article_data).
    created = func.left(p.c.created, literal_column("23")).op("||")(literal_column("'Z'"))
    updated = func.left(p.c.updated, literal_column("23")).op("||")(literal_column("'Z'"))
    doc = _record(
        "doc",
        (p, author),
        slug=p.c.slug,
        title=p.c.title,
        description=p.c.description,
        tagList=p.c.tag_names,
        createdAt=created,
        updatedAt=updated,
        favorited=p.c.favorited,
        favoritesCount=p.c.favorites_count,
        author=author.table_valued(),
    )
    columns = [
        cast(func.json_agg(doc.table_valued()), Text).label("articles"),
        # No result processor (ARRAY's walks every value): psycopg2 already
        # reads int[] as a list of ints, and a statement whose values are not
        # converted can be prepared (myapp.db_prepared).
        func.array_agg(p.c.id, type_=NullType()).label("ids"),
        func.array_agg(p.c.author_id, type_=NullType()).label("author_ids"),
        func.min(p.c.created).label("last_created"),
    ]
    if "total" in p.c:
        columns.append(func.max(p.c.total).label("total"))
    query = select(*columns).select_from(p.join(author, true()).join(doc, true()))
    if page.get_execution_options().get("prepare"):
        query = query.execution_options(prepare=True)
    return query
