"""Driving the HTML pages with WebTest the way a browser without JavaScript does:
fetch a page, fill its form, submit it (CSRF token and cookies included),
follow the redirect.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import webtest

PASSWORD = "password123"


def form(page: webtest.TestResponse, action: str) -> webtest.Form:
    """The form on ``page`` that posts to ``action`` (exactly one)."""
    found = [f for f in page.forms.values() if (f.action or "").split("?")[0] == action]
    assert len(found) == 1, f"{len(found)} forms post to {action}"
    return found[0]


def texts(page: webtest.TestResponse, selector: str) -> list[str]:
    return [" ".join(node.get_text(" ").split()) for node in page.html.select(selector)]


def errors(page: webtest.TestResponse) -> list[str]:
    return texts(page, ".error-messages li")


def state(page: webtest.TestResponse) -> dict[str, Any]:
    """What ``window.__conduit_debug__`` will report on this page."""
    node = page.html.select_one("script#conduit-state")
    assert node is not None
    return json.loads(node.string)


class Browser:
    """One visitor: its own cookie jar over the shared test app."""

    def __init__(self, app: webtest.TestApp):
        self.app = app
        self.username: str | None = None
        self.email: str | None = None

    @classmethod
    def new(cls, testapp: webtest.TestApp) -> Browser:
        """Another visitor of the same app (and the same test database)."""
        return cls(webtest.TestApp(testapp.app, extra_environ=dict(testapp.extra_environ)))

    def get(self, url: str, status: Any = 200) -> webtest.TestResponse:
        return self.app.get(url, status=status)

    def register(self, username: str | None = None, password: str = PASSWORD) -> str:
        username = username or f"u{uuid.uuid4().hex[:10]}"
        page = self.get("/register")
        register_form = form(page, "/register")
        register_form["username"] = username
        register_form["email"] = f"{username}@example.com"
        register_form["password"] = password
        result = register_form.submit(status=303)
        assert result.location.endswith("/"), result.location
        self.username, self.email = username, f"{username}@example.com"
        return username

    def login(self, email: str, password: str = PASSWORD, status: int = 303) -> Any:
        login_form = form(self.get("/login"), "/login")
        login_form["email"] = email
        login_form["password"] = password
        return login_form.submit(status=status)

    def logout(self) -> None:
        page = self.get("/settings")
        form(page, "/logout").submit(status=303)

    def write(
        self, title: str, body: str = "Some *text*", description: str = "About it", **kw: Any
    ) -> str:
        """Publish an article through the editor; return its slug."""
        editor = form(self.get("/editor"), "/editor")
        editor["title"] = title
        editor["description"] = description
        editor["body"] = body
        editor["tags"] = kw.get("tags", "")
        result = editor.submit(status=303)
        path = result.location.split("localhost", 1)[-1]
        assert path.startswith("/article/"), path
        return path.removeprefix("/article/")
