"""All models, imported in one place so that ``Base.metadata`` is complete
(Alembic's autogenerate and the schema test rely on it)."""

from myapp.models.article import Article, ArticleTag, Favorite, Tag
from myapp.models.comment import Comment
from myapp.models.counts import ArticleCount
from myapp.models.job import Job, Notification
from myapp.models.meta import Base, metadata
from myapp.models.user import Follow, User

__all__ = [
    "Article",
    "ArticleCount",
    "ArticleTag",
    "Base",
    "Comment",
    "Favorite",
    "Follow",
    "Job",
    "Notification",
    "Tag",
    "User",
    "metadata",
]
