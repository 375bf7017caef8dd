"""Registration, login, profile changes and follows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from myapp import identities
from myapp.cache import pending
from myapp.models import Follow, User
from myapp.models.meta import utcnow
from myapp.security import Passwords
from myapp.services import rules
from myapp.services.errors import Conflict, ErrorMap, Invalid, NotFound

TAKEN = "has already been taken"


def _check_unique(db: Session, username: str | None, email: str | None, me: int | None) -> None:
    errors: ErrorMap = {}
    if username is not None:
        found = db.scalar(select(User.id).where(User.username == username))
        if found is not None and found != me:
            errors["username"] = [TAKEN]
    if email is not None:
        found = db.scalar(select(User.id).where(User.email == email))
        if found is not None and found != me:
            errors["email"] = [TAKEN]
    if errors:
        raise Conflict(errors)


def register(db: Session, passwords: Passwords, username: str, email: str, password: str) -> User:
    errors: ErrorMap = {}
    username = rules.clean_username(errors, username)
    email = rules.clean_email(errors, email)
    password = rules.clean_password(errors, password)
    rules.raise_if(errors)
    # Checked first for a friendly 409; a concurrent twin still hits the
    # unique constraint, and pyramid_retry replays the request into this 409.
    _check_unique(db, username, email, None)
    user = User(username=username, email=email, password_hash=passwords.hash(password))
    db.add(user)
    db.flush()
    return user


def authenticate(db: Session, passwords: Passwords, email: str, password: str) -> User | None:
    errors: ErrorMap = {}
    if not email.strip():
        errors["email"] = [rules.BLANK]
    if not password:
        errors["password"] = [rules.BLANK]
    rules.raise_if(errors)
    user = db.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        # Spend the same time as a real check, so response times do not
        # tell which emails are registered.
        passwords.verify(_DUMMY_HASH.get(passwords), password)
        return None
    if not passwords.verify(user.password_hash, password):
        return None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash(password)
    return user


class _DummyHash:
    def __init__(self) -> None:
        self.cache: dict[int, str] = {}

    def get(self, passwords: Passwords) -> str:
        key = id(passwords)
        if key not in self.cache:
            self.cache[key] = passwords.hash("not the password")
        return self.cache[key]


_DUMMY_HASH = _DummyHash()


def update(db: Session, passwords: Passwords, user: User, changes: dict[str, Any]) -> User:
    """Apply the fields present in ``changes``; absent fields stay as they are."""
    errors: ErrorMap = {}
    values: dict[str, Any] = {}
    if "username" in changes:
        values["username"] = rules.clean_username(errors, changes["username"])
    if "email" in changes:
        values["email"] = rules.clean_email(errors, changes["email"])
    if "password" in changes:
        values["password"] = rules.clean_password(errors, changes["password"])
    if "bio" in changes:
        values["bio"] = rules.clean_bio(errors, changes["bio"])
    if "image" in changes:
        values["image"] = rules.clean_image(errors, changes["image"])
    rules.raise_if(errors)
    _check_unique(db, values.get("username"), values.get("email"), user.id)
    if values:
        user.updated_at = utcnow()
    if "password" in values:
        user.password_hash = passwords.hash(values.pop("password"))
    for key, value in values.items():
        setattr(user, key, value)
    db.flush()
    return user


def by_username(db: Session, username: str) -> User:
    user = db.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound("profile")
    return user


def following_ids(db: Session, follower: User | None, author_ids: Iterable[int]) -> set[int]:
    """Which of ``author_ids`` the ``follower`` follows, in one query."""
    ids = set(author_ids)
    if follower is None or not ids:
        return set()
    rows = db.scalars(
        select(Follow.followed_id).where(
            Follow.follower_id == follower.id, Follow.followed_id.in_(ids)
        )
    )
    return set(rows)


def follow(db: Session, follower: User, followed: User) -> None:
    if follower.id == followed.id:
        raise Invalid({"profile": ["cannot follow yourself"]})
    exists = db.get(Follow, (follower.id, followed.id))
    if exists is None:
        db.add(Follow(follower_id=follower.id, followed_id=followed.id))
        db.flush()


def unfollow(db: Session, follower: User, followed: User) -> None:
    db.execute(
        delete(Follow).where(Follow.follower_id == follower.id, Follow.followed_id == followed.id)
    )
    # A bulk delete is invisible to the flush hook: purge the follower's flags.
    pending(db).generations.update(identities.flags_generations(follower.id))
