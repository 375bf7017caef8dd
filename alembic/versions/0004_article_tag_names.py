"""article tag names: the ordered tag names kept on the article

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 01:40:00.000000

``articles.tag_names`` (``text[]`` on Postgres, JSON on SQLite) is a copy of
the article's ``article_tags`` names in the author's order, written by the
services whenever the tags are (myapp.services.articles). A list page then
reads each article's tags with the article instead of aggregating its link
rows per article, which was most of the page query's time. Existing rows are
backfilled from the links.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POSTGRES_BACKFILL = """
UPDATE articles a SET tag_names = t.names
FROM (
    SELECT article_tags.article_id,
           array_agg(tags.name ORDER BY article_tags.position) AS names
    FROM article_tags JOIN tags ON tags.id = article_tags.tag_id
    GROUP BY article_tags.article_id
) t
WHERE t.article_id = a.id
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
    if op.get_bind().dialect.name == "postgresql":
        column_type = postgresql.ARRAY(sa.Text())
        empty, backfill = "'{}'", POSTGRES_BACKFILL
    else:
        column_type, empty, backfill = sa.JSON(), "'[]'", SQLITE_BACKFILL
    # Added with a default so existing rows are valid at once, filled from
    # the links, then the default goes: every writer names the tags.
    op.add_column(
        'articles',
        sa.Column('tag_names', column_type, server_default=sa.text(empty), nullable=False),
    )
    op.execute(backfill)
    with op.batch_alter_table('articles') as batch_op:
        batch_op.alter_column('tag_names', existing_type=column_type, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('articles') as batch_op:
        batch_op.drop_column('tag_names')
