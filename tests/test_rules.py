"""The shared field rules refuse what Postgres cannot store, for pages as for the API."""

from __future__ import annotations

from myapp.services import rules
from myapp.services.errors import ErrorMap


def test_nul_characters_are_refused_in_every_text_field() -> None:
    errors: ErrorMap = {}
    rules.clean_title(errors, "a\x00b")
    rules.clean_body(errors, "body\x00")
    rules.clean_bio(errors, "bio\x00")
    rules.clean_image(errors, "https://example.com/\x00.png")
    rules.clean_tags(errors, ["ok", "bad\x00tag"])
    rules.clean_username(errors, "user\x00")
    assert errors == {
        field: [rules.NUL] for field in ("title", "body", "bio", "image", "tagList", "username")
    }


def test_clean_values_pass() -> None:
    errors: ErrorMap = {}
    assert rules.clean_tags(errors, [" a ", "b", "a", ""]) == ["a", "b"]
    assert rules.clean_bio(errors, "  ") is None
    assert rules.clean_image(errors, "") is None
    assert errors == {}
