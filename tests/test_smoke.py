from tests.conftest import Api


def test_register_and_read_back(api: Api) -> None:
    user = api.register("smoke")
    me = api.get("/api/user", user["token"]).json["user"]
    assert me["username"] == "smoke"
    art = api.article(user["token"], tagList=["a", "b"])
    got = api.get(f"/api/articles/{art['slug']}").json["article"]
    assert got["tagList"] == ["a", "b"]
