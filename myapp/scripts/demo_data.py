"""A small, fixed demo data set, so ``make run`` shows a living Conduit.

``myapp-demo-data INI`` loads it into an empty database; the same users can
log in with the password ``conduit-demo``.
"""

from __future__ import annotations

import argparse
import sys

from pyramid.paster import bootstrap, setup_logging
from pyramid.request import Request
from sqlalchemy import select

from myapp.models import User
from myapp.services import articles, comments, users

DEMO_PASSWORD = "conduit-demo"

USERS = [
    ("ada", "ada@demo.conduit", "Mathematician. Wrote the first program.", None),
    ("grace", "grace@demo.conduit", "Found the first bug (it was a moth).", None),
    ("linus", "linus@demo.conduit", None, None),
]

ARTICLES = [
    (
        "ada",
        "How a Pyramid app scales",
        "Five strategies, one codebase",
        "# Scaling Pyramid\n\nStateless **gunicorn** replicas behind *Nginx*, "
        "dogpile.cache on Redis, indexes proved by `EXPLAIN`, and Celery for slow work.",
        ["pyramid", "scaling", "python"],
    ),
    (
        "grace",
        "Debugging in production",
        "Read the logs first",
        "Every request carries an `X-Request-ID`; grep for it.\n\n- logs\n- metrics\n- traces",
        ["debugging", "python"],
    ),
    (
        "linus",
        "Connection pools, explained",
        "Why replicas x workers x pool matters",
        "Postgres has a `max_connections`. Do the arithmetic before you scale out.",
        ["postgres", "scaling"],
    ),
    (
        "ada",
        "Caching without lies",
        "Purge after commit, never before",
        "A cache purged *before* the commit can be refilled with the old row.",
        ["caching", "redis", "scaling"],
    ),
]


def load_if_empty(request: Request) -> bool:
    db = request.dbsession
    with request.tm:
        if db.scalar(select(User.id).limit(1)) is not None:
            return False
        passwords = request.registry["passwords"]
        people = {}
        for username, email, bio, image in USERS:
            user = users.register(db, passwords, username, email, DEMO_PASSWORD)
            users.update(db, passwords, user, {"bio": bio, "image": image})
            people[username] = user
        users.follow(db, people["grace"], people["ada"])
        users.follow(db, people["linus"], people["ada"])
        users.follow(db, people["ada"], people["grace"])
        for author, title, description, body, tags in ARTICLES:
            article = articles.create(
                db,
                people[author],
                {"title": title, "description": description, "body": body, "tagList": tags},
            )
            for reader in people.values():
                if reader is not people[author]:
                    articles.favorite(db, reader, article)
            comments.add(db, people["grace"], article, "Great read, thank you!")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config_uri")
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    setup_logging(args.config_uri)
    with bootstrap(args.config_uri) as env:
        loaded = load_if_empty(env["request"])
    print("demo data loaded" if loaded else "database has users: nothing loaded")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
