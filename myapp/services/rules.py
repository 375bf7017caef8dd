"""Field rules shared by the API and the page forms.

Each ``clean_*`` takes the raw value and returns the value to store, adding
messages to ``errors`` under the field's name when the value breaks a rule.
Messages follow the RealWorld wording ("can't be blank", ...).
"""

from __future__ import annotations

import re

from myapp.models.article import BODY_MAX, DESCRIPTION_MAX, TAG_MAX, TAGS_PER_ARTICLE_MAX, TITLE_MAX
from myapp.models.comment import COMMENT_MAX
from myapp.models.user import EMAIL_MAX, IMAGE_MAX, USERNAME_MAX
from myapp.services.errors import ErrorMap, Invalid

BLANK = "can't be blank"
PASSWORD_MIN = 8
PASSWORD_MAX = 256
BIO_MAX = 5_000
USERNAME_RE = re.compile(r"^[\w.\-]+$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)


def _add(errors: ErrorMap, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def _too_long(limit: int) -> str:
    return f"is too long (maximum is {limit} characters)"


NUL = "must not contain NUL characters"


def _nul_free(errors: ErrorMap, field: str, value: str | None) -> bool:
    """Postgres text cannot hold NUL (psycopg2 raises, a 500): refuse it here,
    for the pages' forms as for the API."""
    if value and "\x00" in value:
        _add(errors, field, NUL)
        return False
    return True


def required_text(errors: ErrorMap, field: str, value: str, limit: int, strip: bool = True) -> str:
    cleaned = value.strip() if strip else value
    if not _nul_free(errors, field, value):
        return cleaned
    if not value.strip():
        _add(errors, field, BLANK)
    elif len(cleaned) > limit:
        _add(errors, field, _too_long(limit))
    return cleaned


def clean_username(errors: ErrorMap, value: str) -> str:
    value = required_text(errors, "username", value, USERNAME_MAX)
    if value and "username" not in errors and not USERNAME_RE.match(value):
        _add(errors, "username", "may only contain letters, digits, '_', '-' and '.'")
    return value


def clean_email(errors: ErrorMap, value: str) -> str:
    value = required_text(errors, "email", value, EMAIL_MAX).lower()
    if value and "email" not in errors and not EMAIL_RE.match(value):
        _add(errors, "email", "is invalid")
    return value


def clean_password(errors: ErrorMap, value: str) -> str:
    if not value:
        _add(errors, "password", BLANK)
    elif len(value) < PASSWORD_MIN:
        _add(errors, "password", f"is too short (minimum is {PASSWORD_MIN} characters)")
    elif len(value) > PASSWORD_MAX:
        _add(errors, "password", _too_long(PASSWORD_MAX))
    return value


def clean_bio(errors: ErrorMap, value: str | None) -> str | None:
    """Empty means "no bio": stored as NULL, shown as null."""
    if value is None or not value.strip():
        return None
    if not _nul_free(errors, "bio", value):
        return value
    if len(value) > BIO_MAX:
        _add(errors, "bio", _too_long(BIO_MAX))
    return value


def clean_image(errors: ErrorMap, value: str | None) -> str | None:
    """Empty means "default avatar". Only http(s) URLs: never javascript: or data:."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not _nul_free(errors, "image", value):
        return value
    if len(value) > IMAGE_MAX:
        _add(errors, "image", _too_long(IMAGE_MAX))
    elif not URL_RE.match(value):
        _add(errors, "image", "must be an http(s) URL")
    return value


def clean_title(errors: ErrorMap, value: str) -> str:
    return required_text(errors, "title", value, TITLE_MAX)


def clean_description(errors: ErrorMap, value: str) -> str:
    return required_text(errors, "description", value, DESCRIPTION_MAX)


def clean_body(errors: ErrorMap, value: str) -> str:
    return required_text(errors, "body", value, BODY_MAX, strip=False)


def clean_comment(errors: ErrorMap, value: str) -> str:
    return required_text(errors, "body", value, COMMENT_MAX, strip=False)


def clean_tags(errors: ErrorMap, values: list[str]) -> list[str]:
    """Trimmed, without blanks or repeats, in the author's order."""
    tags: list[str] = []
    seen: set[str] = set()
    for raw in values:
        tag = raw.strip()
        if not tag or tag in seen:
            continue
        if len(tag) > TAG_MAX:
            _add(errors, "tagList", f"tags are too long (maximum is {TAG_MAX} characters)")
            break
        if not _nul_free(errors, "tagList", tag):
            break
        tags.append(tag)
        seen.add(tag)
        # A 1 MB body holds ~150k short tags: stop as soon as there are too
        # many (and look repeats up in a set) instead of doing O(n^2) work.
        if len(tags) > TAGS_PER_ARTICLE_MAX:
            break
    if len(tags) > TAGS_PER_ARTICLE_MAX:
        _add(errors, "tagList", f"has too many tags (maximum is {TAGS_PER_ARTICLE_MAX})")
    return tags


def raise_if(errors: ErrorMap) -> None:
    if errors:
        raise Invalid(errors)
