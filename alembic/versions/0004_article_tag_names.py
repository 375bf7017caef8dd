"""article tag names: the ordered tag names kept on the article

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 01:40:00.000000

``articles.tag_names`` (``text[]`` on Postgres, JSON on SQLite) is a copy of
the article's ``article_tags`` names in the author's order. A list page reads
each article's tags with the article instead of aggregating its link rows per
article, which was most of the page query's time.

Who keeps it right:

* the services write it with the links (myapp.services.articles);
* on Postgres, statement-level triggers on ``article_tags`` recompute it for
  the articles whose links a statement changed, whatever wrote them — the
  previous release during a rolling deploy (which names no ``tag_names``:
  the column has a default, so its inserts still work), a rollback to it, a
  script. They skip articles whose copy is already right (the usual case:
  the services wrote it first);
* existing rows are backfilled here, on Postgres in batches of ``BATCH``
  articles, each its own transaction *after* the column and the triggers are
  committed: adding a column with a constant default only touches the
  catalog, so ``articles`` is locked for milliseconds, never for a
  million-row UPDATE while the replicas wait (a write during the backfill
  fires the triggers, so nothing is missed).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000

# The tag names of the articles in ``changed`` (a transition table, or a batch).
NAMES_OF = """
SELECT c.article_id,
       coalesce(array_agg(t.name::text ORDER BY l.position)
                FILTER (WHERE t.name IS NOT NULL), '{{}}') AS names
FROM (SELECT DISTINCT article_id FROM {source}) c
LEFT JOIN article_tags l ON l.article_id = c.article_id
LEFT JOIN tags t ON t.id = l.tag_id
GROUP BY c.article_id
"""

SYNC = """
UPDATE articles a SET tag_names = s.names
FROM ({names}) s
WHERE a.id = s.article_id AND a.tag_names IS DISTINCT FROM s.names
"""

FUNCTION = f"""
CREATE OR REPLACE FUNCTION article_tag_names_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    {SYNC.format(names=NAMES_OF.format(source="changed"))};
    RETURN NULL;
END
$$
"""

TRIGGERS = {
    "insert": "AFTER INSERT ON article_tags REFERENCING NEW TABLE AS changed",
    "update": "AFTER UPDATE ON article_tags REFERENCING NEW TABLE AS changed",
    "delete": "AFTER DELETE ON article_tags REFERENCING OLD TABLE AS changed",
}

# One batch of articles after :after, by id; returns the last id it covered.
BACKFILL_BATCH = f"""
WITH batch AS (
    SELECT id AS article_id FROM articles WHERE id > :after ORDER BY id LIMIT {BATCH}
), synced AS (
    {SYNC.format(names=NAMES_OF.format(source="batch"))}
)
SELECT max(article_id) FROM batch
"""

SQLITE_BACKFILL = """
UPDATE articles SET tag_names = (
    SELECT json_group_array(name) FROM (
        SELECT tags.name AS name FROM article_tags
        JOIN tags ON tags.id = article_tags.tag_id
        WHERE article_tags.article_id = articles.id
        ORDER BY article_tags.position
    )
)
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.add_column(
            'articles',
            sa.Column('tag_names', sa.JSON(), server_default=sa.text("'[]'"), nullable=False),
        )
        op.execute(SQLITE_BACKFILL)
        return
    op.add_column(
        'articles',
        sa.Column(
            'tag_names',
            postgresql.ARRAY(sa.Text()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
    )
    op.execute(FUNCTION)
    for event, clause in TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER article_tags_names_{event} {clause} "
            "FOR EACH STATEMENT EXECUTE FUNCTION article_tag_names_sync()"
        )
    with op.get_context().autocommit_block():
        bind = op.get_bind()
        after = 0
        while True:
            last = bind.execute(sa.text(BACKFILL_BATCH), {"after": after}).scalar()
            if last is None:
                break
            after = last


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for event in TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS article_tags_names_{event} ON article_tags")
        op.execute("DROP FUNCTION IF EXISTS article_tag_names_sync()")
    with op.batch_alter_table('articles') as batch_op:
        batch_op.drop_column('tag_names')
