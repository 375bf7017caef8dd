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
* any committed change to a user replaces its **version token** (the flush
  hook in myapp.services.public deletes ``ver:{id}``; the next reader makes
  a new one), so a rename or new password is seen by the next request, on
  every replica. An entry records the token it was read under and counts
  only while that is still the current one: a reader that loaded the row
  just before a commit and stores it just after the purge stores an entry
  that is already outdated. Token and entry come in one round trip.

The same round trip fetches the user's **flags token** (``flags:{id}``): it
versions the user's cached ``favorited``/``following`` flags
(myapp.services.public.flags), and their own (un)favourites and (un)follows
delete it. Read here, before any flags query of the request, it is kept on
the request (:func:`flags_token`) so a logged-in list needs no round trip
of its own to know which flags entry is current.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from pyramid.request import Request
from sqlalchemy.orm import Session, make_transient_to_detached

from myapp.cache import NO_VALUE, new_token
from myapp.models import User

REGION = "identities"
SAFE_METHODS = ("GET", "HEAD")
FLAGS_TOKEN = "myapp.flags_token"
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

    region = cache.regions[REGION]
    stats = cache.stats[REGION]
    token, entry, flags = region.get_multi([version_key(user_id), str(user_id), flags_key(user_id)])
    made = {}
    if token is NO_VALUE:
        token = made[version_key(user_id)] = new_token()
    if flags is NO_VALUE:
        flags = made[flags_key(user_id)] = new_token()
    if made:
        region.set_multi(made)
    request.environ[FLAGS_TOKEN] = (user_id, flags)
    if entry is NO_VALUE or entry["token"] != token:
        stats.misses += 1
        user = db.get(User, user_id)
        if user is None:
            return None  # not remembered: the next request asks the database again
        entry = _entry(user) | {"token": token}
        region.set(str(user_id), entry)
        return Identity(user, entry["fingerprint"])
    stats.hits += 1
    return Identity(_attach(db, entry), entry["fingerprint"])


def version_key(user_id: int) -> str:
    """The key of ``user_id``'s version token (deleted to purge the user's entry)."""
    return f"ver:{user_id}"


def flags_key(user_id: int) -> str:
    """The key of ``user_id``'s flags token (deleted when their flags change)."""
    return f"flags:{user_id}"


def flags_token(request: Request, user: User | None) -> str | None:
    """``user``'s flags token, if this request read it with their identity (a
    safe request with the cache on); otherwise None: flags are not cached."""
    found = request.environ.get(FLAGS_TOKEN)
    if user is None or found is None or found[0] != user.id:
        return None
    return found[1]
