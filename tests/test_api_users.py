"""Registration, login, the current user, profile updates and tokens."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from myapp.security import Passwords, Tokens
from tests.conftest import Api


def new_user(name: str, **fields: Any) -> dict[str, Any]:
    data = {"username": name, "email": f"{name}@example.com", "password": "password123"}
    return {"user": data | fields}


def user_count(connection: Connection) -> int:
    return connection.execute(text("SELECT count(*) FROM users")).scalar_one()


# --- registration -----------------------------------------------------------


def test_register_returns_the_user_with_a_token(api: Api) -> None:
    res = api.post("/api/users", new_user("alice"), status=201)
    user = res.json["user"]
    assert user["username"] == "alice"
    assert user["email"] == "alice@example.com"
    assert user["bio"] is None
    assert user["image"] is None
    assert user["token"]
    assert res.content_type == "application/json"
    assert res.charset == "utf-8"
    assert "password" not in user


def test_email_is_stored_lower_case_and_login_ignores_case(api: Api) -> None:
    api.post("/api/users", new_user("bob", email="Bob@Example.COM"), status=201)
    me = api.post(
        "/api/users/login",
        {"user": {"email": "BOB@example.com", "password": "password123"}},
        status=200,
    ).json["user"]
    assert me["email"] == "bob@example.com"


def test_password_is_stored_as_an_argon2_hash(api: Api, connection: Connection) -> None:
    api.register("hashed", password="correct horse")
    stored = connection.execute(
        text("SELECT password_hash FROM users WHERE username = 'hashed'")
    ).scalar_one()
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert Passwords().verify(stored, "correct horse")
    assert not Passwords().verify(stored, "wrong horse")


@pytest.mark.parametrize("field", ["username", "email", "password"])
@pytest.mark.parametrize("value", [None, "", "   "])
def test_register_rejects_blank_or_null_fields(
    api: Api, connection: Connection, field: str, value: Any
) -> None:
    before = user_count(connection)
    res = api.post("/api/users", new_user("blank", **{field: value}), status=422)
    assert field in res.json["errors"]
    assert user_count(connection) == before


@pytest.mark.parametrize("field", ["username", "email", "password"])
def test_register_requires_every_field(api: Api, field: str) -> None:
    body = new_user("partial")
    del body["user"][field]
    res = api.post("/api/users", body, status=422)
    assert res.json["errors"] == {field: ["can't be blank"]}


def test_register_password_length(api: Api) -> None:
    res = api.post("/api/users", new_user("short", password="1234567"), status=422)
    assert res.json["errors"]["password"] == ["is too short (minimum is 8 characters)"]
    api.post("/api/users", new_user("eight", password="abcdefgh"), status=201)
    api.post("/api/users", new_user("sixtyfour", password="p" * 64), status=201)


@pytest.mark.parametrize(
    ("field", "value"),
    [("username", "with space"), ("username", "u" * 65), ("email", "not-an-email")],
)
def test_register_rejects_malformed_values(api: Api, field: str, value: str) -> None:
    res = api.post("/api/users", new_user("malformed", **{field: value}), status=422)
    assert list(res.json["errors"]) == [field]


def test_duplicate_username_and_email_are_409(api: Api, connection: Connection) -> None:
    api.register("taken")
    before = user_count(connection)
    res = api.post("/api/users", new_user("taken", email="other@example.com"), status=409)
    assert res.json["errors"] == {"username": ["has already been taken"]}
    res = api.post("/api/users", new_user("other", email="TAKEN@example.com"), status=409)
    assert res.json["errors"] == {"email": ["has already been taken"]}
    assert user_count(connection) == before


# --- login ------------------------------------------------------------------


def test_login_returns_a_working_token(api: Api) -> None:
    api.register("carol")
    body = {"user": {"email": "carol@example.com", "password": "password123"}}
    user = api.post("/api/users/login", body, status=200).json["user"]
    assert api.get("/api/user", user["token"]).json["user"]["username"] == "carol"


@pytest.mark.parametrize("email", ["carol2@example.com", "nobody@example.com"])
def test_login_with_wrong_credentials_is_401(api: Api, email: str) -> None:
    api.register("carol2")
    body = {"user": {"email": email, "password": "not-the-password"}}
    res = api.post("/api/users/login", body, status=401)
    assert res.json == {"errors": {"credentials": ["invalid"]}}


@pytest.mark.parametrize("field", ["email", "password"])
def test_login_with_blank_fields_is_422(api: Api, field: str) -> None:
    body = {"user": {"email": "x@example.com", "password": "password123"} | {field: ""}}
    res = api.post("/api/users/login", body, status=422)
    assert res.json["errors"] == {field: ["can't be blank"]}


# --- current user and updates ----------------------------------------------


def test_update_changes_only_given_fields(api: Api) -> None:
    user = api.register("dave")
    body = {"user": {"bio": "I write", "image": "https://example.com/d.png"}}
    updated = api.put("/api/user", body, user["token"], status=200).json["user"]
    assert updated["bio"] == "I write"
    assert updated["image"] == "https://example.com/d.png"
    assert updated["username"] == "dave"
    again = api.get("/api/user", user["token"]).json["user"]
    assert again["bio"] == "I write"


@pytest.mark.parametrize("value", ["", "   ", None])
def test_empty_or_null_bio_and_image_become_null(api: Api, value: Any) -> None:
    user = api.register()
    api.put("/api/user", {"user": {"bio": "b", "image": "https://x.io/i.png"}}, user["token"])
    body = {"user": {"bio": value, "image": value}}
    updated = api.put("/api/user", body, user["token"], status=200).json["user"]
    assert updated["bio"] is None
    assert updated["image"] is None
    profile = api.get(f"/api/profiles/{user['username']}").json["profile"]
    assert profile["bio"] is None
    assert profile["image"] is None


@pytest.mark.parametrize("field", ["email", "username", "password"])
@pytest.mark.parametrize("value", ["", None])
def test_update_rejects_blank_or_null_identity_fields(api: Api, field: str, value: Any) -> None:
    user = api.register()
    res = api.put("/api/user", {"user": {field: value}}, user["token"], status=422)
    assert field in res.json["errors"]
    me = api.get("/api/user", user["token"]).json["user"]
    assert me["username"] == user["username"]
    assert me["email"] == user["email"]


def test_update_password(api: Api, connection: Connection) -> None:
    user = api.register()
    token = user["token"]
    api.put("/api/user", {"user": {"password": "short"}}, token, status=422)

    def updated_at() -> Any:
        query = text("SELECT updated_at FROM users WHERE username = :u")
        return connection.execute(query, {"u": user["username"]}).scalar_one()

    for password in ("abcdefgh", "x" * 64):
        before = updated_at()
        api.put("/api/user", {"user": {"password": password}}, token, status=200)
        login = {"user": {"email": user["email"], "password": password}}
        api.post("/api/users/login", login, status=200)
        # A password change is a change of the row like any other.
        assert updated_at() > before


def test_update_to_a_taken_username_or_email_is_409(api: Api) -> None:
    first = api.register("first")
    second = api.register("second")
    res = api.put("/api/user", {"user": {"username": "first"}}, second["token"], status=409)
    assert res.json["errors"] == {"username": ["has already been taken"]}
    res = api.put("/api/user", {"user": {"email": first["email"]}}, second["token"], status=409)
    assert res.json["errors"] == {"email": ["has already been taken"]}
    # Keeping one's own name is not a conflict.
    api.put("/api/user", {"user": {"username": "second"}}, second["token"], status=200)


def test_rename_keeps_the_token_valid(api: Api) -> None:
    user = api.register("oldname")
    api.put("/api/user", {"user": {"username": "newname"}}, user["token"], status=200)
    assert api.get("/api/user", user["token"]).json["user"]["username"] == "newname"


def test_failed_update_changes_nothing(api: Api) -> None:
    user = api.register()
    body = {"user": {"bio": "new bio", "image": "javascript:alert(1)"}}
    res = api.put("/api/user", body, user["token"], status=422)
    assert "image" in res.json["errors"]
    assert api.get("/api/user", user["token"]).json["user"]["bio"] is None


def test_bio_length_limit(api: Api) -> None:
    user = api.register()
    api.put("/api/user", {"user": {"bio": "b" * 5000}}, user["token"], status=200)
    res = api.put("/api/user", {"user": {"bio": "b" * 5001}}, user["token"], status=422)
    assert res.json["errors"]["bio"] == ["is too long (maximum is 5000 characters)"]


# --- tokens -----------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "put"])
def test_missing_token_is_401(api: Api, method: str) -> None:
    if method == "get":
        res = api.get("/api/user", status=401)
    else:
        res = api.put("/api/user", {"user": {"bio": "x"}}, status=401)
    assert res.json == {"errors": {"token": ["is missing"]}}
    assert res.headers["WWW-Authenticate"].startswith("Token")


@pytest.mark.parametrize(
    "header",
    [
        "Token",
        "Token not-a-jwt",
        "Basic dXNlcjpwYXNz",
        "Token eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl",
    ],
)
def test_malformed_token_is_invalid(api: Api, header: str) -> None:
    res = api.app.get("/api/user", headers={"Authorization": header}, status=401)
    assert res.json == {"errors": {"token": ["is invalid"]}}


def test_token_with_a_bad_signature_is_invalid(api: Api, wsgi_app: Any) -> None:
    user = api.register()
    user_id = wsgi_app.registry["tokens"].user_id(user["token"])
    forged = Tokens("another-secret-" + "y" * 32, 3600).issue(user_id)
    res = api.get("/api/user", forged, status=401)
    assert res.json == {"errors": {"token": ["is invalid"]}}
    # The signature's first character carries 6 significant bits: any change shows.
    head, signature = user["token"].rsplit(".", 1)
    tampered = f"{head}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"
    assert api.get("/api/user", tampered, status=401).json["errors"]["token"] == ["is invalid"]


def test_expired_token(api: Api, wsgi_app: Any) -> None:
    user = api.register()
    tokens: Tokens = wsgi_app.registry["tokens"]
    expired = Tokens(tokens.secret, -60).issue(tokens.user_id(user["token"]))
    res = api.get("/api/user", expired, status=401)
    assert res.json == {"errors": {"token": ["has expired"]}}
    # A bad token is refused even where a token is optional.
    api.get("/api/articles", expired, status=401)


def test_a_remembered_token_still_expires(api: Api, wsgi_app: Any) -> None:
    """Each process remembers the tokens it has verified (myapp.security.Tokens):
    the expiry is still checked on every use, and a tampered copy is not the same token."""
    user = api.register()
    tokens: Tokens = wsgi_app.registry["tokens"]
    short = Tokens(tokens.secret, 1)
    token = short.issue(tokens.user_id(user["token"]))
    for _ in range(2):  # the second use is answered from the memo
        assert api.get("/api/user", token).json["user"]["username"] == user["username"]
    head, signature = token.rsplit(".", 1)
    tampered = f"{head}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"
    assert api.get("/api/user", tampered, status=401).json["errors"]["token"] == ["is invalid"]
    time.sleep(1.1)
    res = api.get("/api/user", token, status=401)
    assert res.json == {"errors": {"token": ["has expired"]}}


def test_bearer_scheme_is_accepted(api: Api) -> None:
    user = api.register()
    headers = {"Authorization": f"Bearer {user['token']}"}
    api.app.get("/api/user", headers=headers, status=200)


def test_token_of_a_deleted_user_is_401(api: Api, connection: Connection) -> None:
    user = api.register("ghost")
    connection.execute(text("DELETE FROM users WHERE username = 'ghost'"))
    res = api.get("/api/user", user["token"], status=401)
    assert res.json == {"errors": {"token": ["is invalid"]}}


def test_update_needs_at_least_one_known_field(api: Api) -> None:
    user = api.register()
    for body in ({"user": {}}, {"user": {"favouriteColour": "green"}}):
        response = api.put("/api/user", body, user["token"], status=422)
        assert "user" in response.json["errors"]
