"""lists at scale: list counters, tag index in list order, comments by author

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 18:10:00.000000

1. ``article_counts`` holds how many articles each list has (all, per tag,
   per author, per user's favourites); on Postgres, statement-level
   triggers with transition tables keep it exact (see
   myapp.services.counts for why). Each statement aggregates its rows first
   and upserts in key order, so two transactions touching the same
   counters lock them in the same order (no deadlock between them). Keys
   never change in this app, but a row trigger moves a count if one ever
   does; TRUNCATE resets the affected scopes.
2. ``article_tags.created_at`` (the article's, copied) and the index
   (tag_id, created_at, article_id) replacing (tag_id, article_id): a
   tag's newest articles are the first entries of one index range
   (myapp.services.paging). On Postgres a trigger fills the column for
   inserts that leave it out, and follows an article's created_at if it
   is ever changed.
3. ``ix_comments_author_id``: a user's comments (the data export) and the
   cascade when a user is deleted no longer read every comment.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, function, scope and key expressions over the changed rows)
COUNTED = [
    ("articles", "article_counts_articles",
     "SELECT 'all' AS scope, 0::bigint AS key, count(*) AS n FROM changed "
     "UNION ALL SELECT 'author', author_id, count(*) FROM changed GROUP BY author_id"),
    ("article_tags", "article_counts_article_tags",
     "SELECT 'tag' AS scope, tag_id AS key, count(*) AS n FROM changed GROUP BY tag_id"),
    ("favorites", "article_counts_favorites",
     "SELECT 'favorited' AS scope, user_id AS key, count(*) AS n FROM changed GROUP BY user_id"),
]
# (table, key column, scope) for the rare key change and for TRUNCATE.
KEYS = [
    ("articles", "author_id", "author"),
    ("article_tags", "tag_id", "tag"),
    ("favorites", "user_id", "favorited"),
]
TRUNCATED_SCOPES = {
    "articles": "'all', 'author'",
    "article_tags": "'tag'",
    "favorites": "'favorited'",
}

RECOUNT = """
DELETE FROM article_counts;
INSERT INTO article_counts (scope, key, articles)
SELECT 'all', 0, count(*) FROM articles
UNION ALL SELECT 'author', author_id, count(*) FROM articles GROUP BY author_id
UNION ALL SELECT 'tag', tag_id, count(*) FROM article_tags GROUP BY tag_id
UNION ALL SELECT 'favorited', user_id, count(*) FROM favorites GROUP BY user_id;
"""


def _postgres_upgrade() -> None:
    for table, function, deltas in COUNTED:
        op.execute(f"""
CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sign integer := CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END;
BEGIN
    INSERT INTO article_counts AS c (scope, key, articles)
    SELECT d.scope, d.key, sign * d.n FROM ({deltas}) d
    WHERE d.n > 0
    ORDER BY d.scope, d.key
    ON CONFLICT (scope, key) DO UPDATE SET articles = c.articles + EXCLUDED.articles;
    RETURN NULL;
END $$""")
        op.execute(
            f"CREATE TRIGGER {table}_counted_insert AFTER INSERT ON {table} "
            f"REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_counted_delete AFTER DELETE ON {table} "
            f"REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
    for table, column, scope in KEYS:
        op.execute(f"""
CREATE FUNCTION article_counts_{table}_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO article_counts AS c (scope, key, articles)
    VALUES ('{scope}', LEAST(OLD.{column}, NEW.{column}),
            CASE WHEN OLD.{column} < NEW.{column} THEN -1 ELSE 1 END),
           ('{scope}', GREATEST(OLD.{column}, NEW.{column}),
            CASE WHEN OLD.{column} < NEW.{column} THEN 1 ELSE -1 END)
    ON CONFLICT (scope, key) DO UPDATE SET articles = c.articles + EXCLUDED.articles;
    RETURN NULL;
END $$""")
        op.execute(
            f"CREATE TRIGGER {table}_counted_move AFTER UPDATE OF {column} ON {table} "
            f"FOR EACH ROW WHEN (OLD.{column} IS DISTINCT FROM NEW.{column}) "
            f"EXECUTE FUNCTION article_counts_{table}_moved()"
        )
        op.execute(f"""
CREATE FUNCTION article_counts_{table}_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM article_counts WHERE scope IN ({TRUNCATED_SCOPES[table]});
    RETURN NULL;
END $$""")
        op.execute(
            f"CREATE TRIGGER {table}_counted_truncate AFTER TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION article_counts_{table}_truncated()"
        )
    op.execute(RECOUNT)


TAG_CREATED_AT = """
CREATE FUNCTION article_tags_created_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.created_at := (SELECT created_at FROM articles WHERE id = NEW.article_id);
    RETURN NEW;
END $$;
CREATE TRIGGER article_tags_created_at BEFORE INSERT ON article_tags
    FOR EACH ROW WHEN (NEW.created_at IS NULL) EXECUTE FUNCTION article_tags_created_at();
CREATE FUNCTION articles_created_at_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE article_tags SET created_at = NEW.created_at WHERE article_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER articles_created_at_moved AFTER UPDATE OF created_at ON articles
    FOR EACH ROW WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at)
    EXECUTE FUNCTION articles_created_at_moved();
"""


def _tag_index_upgrade() -> None:
    with op.batch_alter_table('article_tags') as batch:
        batch.add_column(sa.Column('created_at', sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE article_tags SET created_at = "
        "(SELECT created_at FROM articles WHERE articles.id = article_tags.article_id)"
    )
    op.create_index('ix_article_tags_tag_id_created_at_article_id', 'article_tags', ['tag_id', 'created_at', 'article_id'], unique=False)
    op.drop_index('ix_article_tags_tag_id_article_id', table_name='article_tags')
    if op.get_bind().dialect.name == "postgresql":
        op.execute(TAG_CREATED_AT)


def _tag_index_downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS articles_created_at_moved ON articles")
        op.execute("DROP TRIGGER IF EXISTS article_tags_created_at ON article_tags")
        op.execute("DROP FUNCTION IF EXISTS articles_created_at_moved()")
        op.execute("DROP FUNCTION IF EXISTS article_tags_created_at()")
    op.create_index('ix_article_tags_tag_id_article_id', 'article_tags', ['tag_id', 'article_id'], unique=False)
    op.drop_index('ix_article_tags_tag_id_created_at_article_id', table_name='article_tags')
    with op.batch_alter_table('article_tags') as batch:
        batch.drop_column('created_at')


def upgrade() -> None:
    _tag_index_upgrade()
    # A user's comments (the data export; ON DELETE CASCADE from users).
    op.create_index('ix_comments_author_id', 'comments', ['author_id'], unique=False)
    op.create_table('article_counts',
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('key', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('articles', sa.BigInteger(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('scope', 'key', name=op.f('pk_article_counts'))
    )
    if op.get_bind().dialect.name == "postgresql":
        _postgres_upgrade()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, _column, _scope in KEYS:
            for trigger in ("insert", "delete", "move", "truncate"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_counted_{trigger} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS article_counts_{table}_moved()")
            op.execute(f"DROP FUNCTION IF EXISTS article_counts_{table}_truncated()")
        for _table, function, _deltas in COUNTED:
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    op.drop_table('article_counts')
    op.drop_index('ix_comments_author_id', table_name='comments')
    _tag_index_downgrade()
