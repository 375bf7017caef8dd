"""Sign in, sign up, sign out.

A successful login or registration starts a new session (new id, new CSRF
token: see myapp.sessions) and redirects to ``next`` (a local path) or home.
"""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.security import forget, remember
from pyramid.view import view_config

from myapp.models import User
from myapp.pages import forms
from myapp.services import users
from myapp.services.errors import DomainError

TEMPLATE = "myapp:templates/auth.jinja2"
BAD_CREDENTIALS = "email or password is invalid"


def _form(request: Request, mode: str, values: dict[str, str], errors: list[str]) -> dict[str, Any]:
    if errors:
        request.response.status = 422
    next_path = forms.safe_next(request.params.get("next"))
    return {"nav": mode, "mode": mode, "values": values, "errors": errors, "next": next_path}


def _logged_in(request: Request, user: User) -> Any:
    remember(request, user.id, user=user)
    return forms.back(request, request.route_path("home"))


@view_config(route_name="login", request_method="GET", renderer=TEMPLATE)
@view_config(route_name="register", request_method="GET", renderer=TEMPLATE)
def show(request: Request) -> Any:
    if request.identity is not None:
        return forms.redirect(request.route_path("home"))
    return _form(request, request.matched_route.name, {}, [])


@view_config(route_name="login", request_method="POST", renderer=TEMPLATE)
def login(request: Request) -> Any:
    email, password = forms.text(request, "email"), forms.text(request, "password")
    user = None
    try:
        user = users.authenticate(request.dbsession, request.registry["passwords"], email, password)
        errors = [] if user is not None else [BAD_CREDENTIALS]
    except DomainError as exc:
        errors = forms.messages(exc.errors)
    if user is None:
        return _form(request, "login", {"email": email}, errors)
    return _logged_in(request, user)


@view_config(route_name="register", request_method="POST", renderer=TEMPLATE)
def register(request: Request) -> Any:
    values = {name: forms.text(request, name) for name in ("username", "email")}
    try:
        user = users.register(
            request.dbsession,
            request.registry["passwords"],
            values["username"],
            values["email"],
            forms.text(request, "password"),
        )
    except DomainError as exc:
        return _form(request, "register", values, forms.messages(exc.errors))
    return _logged_in(request, user)


@view_config(route_name="logout", request_method="POST")
def logout(request: Request) -> Any:
    forget(request)
    return forms.redirect(request.route_path("home"))
