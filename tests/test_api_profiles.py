"""Profiles and following."""

from __future__ import annotations

import pytest

from tests.conftest import Api

NOT_FOUND = {"errors": {"profile": ["not found"]}}


def test_profile(api: Api) -> None:
    user = api.register("celeb")
    api.put("/api/user", {"user": {"bio": "famous"}}, user["token"], status=200)
    res = api.get("/api/profiles/celeb")
    assert res.json == {
        "profile": {"username": "celeb", "bio": "famous", "image": None, "following": False}
    }


def test_follow_and_unfollow(api: Api) -> None:
    celeb = api.register("celeb")
    fan = api.register("fan")
    other = api.register("other")
    res = api.post("/api/profiles/celeb/follow", token=fan["token"], status=200)
    assert res.json["profile"]["following"] is True
    assert res.json["profile"]["username"] == "celeb"
    # Following twice is still following.
    api.post("/api/profiles/celeb/follow", token=fan["token"], status=200)
    # Two viewers see two different flags; the profile owner does not follow themself.
    assert api.get("/api/profiles/celeb", fan["token"]).json["profile"]["following"] is True
    assert api.get("/api/profiles/celeb", other["token"]).json["profile"]["following"] is False
    assert api.get("/api/profiles/celeb", celeb["token"]).json["profile"]["following"] is False
    assert api.get("/api/profiles/celeb").json["profile"]["following"] is False
    # Following is one way.
    assert api.get("/api/profiles/fan", celeb["token"]).json["profile"]["following"] is False
    res = api.delete("/api/profiles/celeb/follow", fan["token"], status=200)
    assert res.json["profile"]["following"] is False
    assert api.get("/api/profiles/celeb", fan["token"]).json["profile"]["following"] is False
    # Unfollowing someone not followed is fine.
    api.delete("/api/profiles/celeb/follow", other["token"], status=200)


def test_following_yourself_is_refused(api: Api) -> None:
    me = api.register("me")
    res = api.post("/api/profiles/me/follow", token=me["token"], status=422)
    assert "profile" in res.json["errors"]
    assert api.get("/api/profiles/me", me["token"]).json["profile"]["following"] is False


def test_unknown_profile_is_404(api: Api) -> None:
    user = api.register()
    assert api.get("/api/profiles/nobody", status=404).json == NOT_FOUND
    url = "/api/profiles/nobody/follow"
    assert api.post(url, token=user["token"], status=404).json == NOT_FOUND
    assert api.delete(url, user["token"], status=404).json == NOT_FOUND


@pytest.mark.parametrize("method", ["post", "delete"])
def test_anonymous_follow_is_401_before_404(api: Api, method: str) -> None:
    res = getattr(api, method)("/api/profiles/nobody/follow", status=401)
    assert res.json == {"errors": {"token": ["is missing"]}}
