"""The user a request's credentials name, from the ``identities`` region on reads.

Every logged-in request starts by loading its user: the token's subject or
the page session's user id. On a read that is one SQL round trip spent on a
row that changes a few times in its life, so safe requests (GET, HEAD) take
it from the cache:

* the entry holds the user's columns **except the password hash** (never
  copied to Redis), plus a fingerprint of the hash, which page sessions
  compare to log out browsers after a password change;
* it becomes a persistent ``User`` in the request's session without SQL
  (``make_transient_to_detached`` + ``merge(load=False)``, SQLAlchemy's
  recipe for cached objects); an attribute that is not in the entry (the
  hash) loads on access, as a deferred column would;
* writes (POST, PUT, PATCH, DELETE) always read the row itself: what they
  decide, they decide on the database's current state;
* any committed change to a user replaces its **version**, a generation
  token (``user:{id}``, myapp.cache) that the flush hook in
  myapp.services.public bumps, so a rename or new password is seen by the
  next request, on every replica. The entry's key embeds the version it
  was read under: a reader that loaded the row just before a commit and
  stores it just after the purge stores it under a version nobody asks for
  any more. Such a key's content never changes, so each process may keep
  the entry too (myapp.localcache).

The user's **flags token** (generation ``flags:{id}``) versions their cached
``favorited``/``following`` flags (myapp.services.public.flags); their own
(un)favourites and (un)follows bump it. Both tokens come in one round trip
with the list generations every read needs (``lists``, ``people``), which the
rest of the request then reuses (myapp.cache ``request_tokens``): a warm
logged-in list costs one round trip to Redis. The flags token is kept on the
request (:func:`flags_token`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from pyramid.request import Request
from sqlalchemy.orm import Session, make_transient_to_detached

from myapp.models import User

REGION = "identities"
SAFE_METHODS = ("GET", "HEAD")
FLAGS_TOKEN = "myapp.flags_token"
# Generations nearly every read needs (myapp.services.public): fetched with
# the caller's own tokens, in the same round trip.
PREFETCH = ("lists", "people")
COLUMNS = ("id", "username", "email", "bio", "image", "created_at", "updated_at")


def password_fingerprint(password_hash: str) -> str:
    """A short digest of the password hash: it changes when the password does."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Identity:
    user: User
    fingerprint: str


def _entry(user: User) -> dict[str, Any]:
    entry = {name: getattr(user, name) for name in COLUMNS}
    entry["fingerprint"] = password_fingerprint(user.password_hash)
    return entry


def _attach(db: Session, entry: dict[str, Any]) -> User:
    user = User(**{name: entry[name] for name in COLUMNS})
    make_transient_to_detached(user)
    return db.merge(user, load=False)


def load(request: Request, user_id: int) -> Identity | None:
    """User ``user_id`` (and its password fingerprint), or None if there is none."""
    db = request.dbsession
    cache = request.cache
    if request.method not in SAFE_METHODS or not cache.enabled:
        user = db.get(User, user_id)
        return None if user is None else Identity(user, password_fingerprint(user.password_hash))

    version, flags = cache.generations(
        user_generation(user_id), flags_generation(user_id), *PREFETCH
    )[:2]
    request.environ[FLAGS_TOKEN] = (user_id, flags)
    loaded: list[User] = []

    def create() -> dict[str, Any] | None:
        user = db.get(User, user_id)
        if user is None:
            return None  # not remembered: the next request asks the database again
        loaded.append(user)
        return _entry(user)

    entry = cache.get_or_create(
        REGION, f"{user_id}:{version}", create, should_cache=lambda v: v is not None
    )
    if entry is None:
        return None
    user = loaded[0] if loaded else _attach(db, entry)
    return Identity(user, entry["fingerprint"])


def user_generation(user_id: int) -> str:
    """The generation that versions ``user_id``'s cached row (bumped on any change)."""
    return f"user:{user_id}"


def flags_generation(user_id: int) -> str:
    """The generation that versions ``user_id``'s cached flags (their own
    favourites and follows bump it)."""
    return f"flags:{user_id}"


def flags_generations(user_id: int) -> tuple[str, ...]:
    """What a change to ``user_id``'s flags bumps: theirs, and the previous
    release's name for it (``viewer:{id}``: rolling deploys; drop next release)."""
    return flags_generation(user_id), f"viewer:{user_id}"


def flags_token(request: Request, user: User | None) -> str | None:
    """``user``'s flags token, if this request read it with their identity (a
    safe request with the cache on); otherwise None: flags are not cached."""
    found = request.environ.get(FLAGS_TOKEN)
    if user is None or found is None or found[0] != user.id:
        return None
    return found[1]


def flags_session(request: Request, viewer: User | None) -> Session | None:
    """The session to read ``viewer``'s flags through: none for nobody, so an
    anonymous read never makes the request's Session (and transaction)."""
    return None if viewer is None else request.dbsession
