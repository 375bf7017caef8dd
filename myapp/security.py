"""Who is calling, and what they may do.

* Passwords: argon2id (argon2-cffi); hashes are upgraded on login when the
  configured cost changes.
* The API: ``Authorization: Token <jwt>`` (``Bearer`` is accepted too), a
  PyJWT HS256 token signed with ``auth.secret`` that expires after
  ``auth.token_ttl_seconds``. Its subject is the user id, so renaming a user
  does not invalidate their tokens.
* Permissions: Pyramid's ACLs. Resources (articles, comments) carry an
  ``__acl__`` naming their author; views ask ``request.has_permission``.

* The pages: without an ``Authorization`` header, the page session names the
  user (myapp.sessions: cookie + Redis or signed cookie); ``remember`` and
  ``forget`` start and end that session. Requests under /api never read it.

``identity`` never raises: a bad token leaves ``request.token_error`` set
("is invalid", "has expired") so the API can answer 401 with the reason.
"""

from __future__ import annotations

import functools
import logging
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pyramid.authorization import ACLHelper, Authenticated, Everyone
from pyramid.config import Configurator
from pyramid.exceptions import ConfigurationError
from pyramid.request import Request, RequestLocalCache
from pyramid.settings import asbool

from myapp import identities, sessions
from myapp.models import User

log = logging.getLogger(__name__)

TOKEN_SCHEMES = ("token", "bearer")
JWT_ALGORITHM = "HS256"
JWT_ISSUER = "conduit"


class Passwords:
    """argon2id hashing with costs from settings (tests lower them)."""

    def __init__(self, time_cost: int = 3, memory_cost: int = 65536, parallelism: int = 4):
        self.hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
        )

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self.hasher.check_needs_rehash(password_hash)


class Tokens:
    def __init__(self, secret: str, ttl_seconds: int, remembered: int = 4096):
        self.secret = secret
        self.ttl = timedelta(seconds=ttl_seconds)
        # A client sends the same token with every request, and checking its
        # signature and claims (PyJWT) is a tenth of a cached read: each
        # process remembers the tokens it has verified, with their expiry,
        # which is checked on every use. Only valid tokens are remembered
        # (a failed check raises, and lru_cache keeps nothing), so garbage
        # cannot fill the memo; making a valid token takes the secret.
        self._verified = functools.lru_cache(maxsize=remembered)(self._verify)

    def issue(self, user_id: int) -> str:
        now = datetime.now(UTC)
        payload = {"sub": str(user_id), "iat": now, "exp": now + self.ttl, "iss": JWT_ISSUER}
        return jwt.encode(payload, self.secret, algorithm=JWT_ALGORITHM)

    def user_id(self, token: str) -> int:
        """The token's user id; raises ``jwt.InvalidTokenError`` when it is bad."""
        user_id, expires = self._verified(token)
        if time.time() >= expires:
            raise jwt.ExpiredSignatureError("Signature has expired")
        return user_id

    def _verify(self, token: str) -> tuple[int, float]:
        payload = jwt.decode(
            token,
            self.secret,
            algorithms=[JWT_ALGORITHM],
            issuer=JWT_ISSUER,
            options={"require": ["sub", "exp", "iat"]},
        )
        try:
            return int(payload["sub"]), float(payload["exp"])
        except (TypeError, ValueError) as exc:
            raise jwt.InvalidTokenError("bad subject") from exc


def token_from_header(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() in TOKEN_SCHEMES and value.strip():
        return value.strip()
    return None


class SecurityPolicy:
    """Token identity for the API, the page session for the pages."""

    def __init__(self) -> None:
        self.cache = RequestLocalCache(self.load_identity)
        self.acl = ACLHelper()

    def load_identity(self, request: Request) -> User | None:
        request.token_error = None
        if "Authorization" not in request.headers:
            return sessions.session_identity(request)
        token = token_from_header(request)
        if token is None:
            request.token_error = "is invalid"
            return None
        tokens: Tokens = request.registry["tokens"]
        try:
            user_id = tokens.user_id(token)
        except jwt.ExpiredSignatureError:
            request.token_error = "has expired"
            return None
        except jwt.InvalidTokenError:
            request.token_error = "is invalid"
            return None
        found = identities.load(request, user_id)
        if found is None:
            request.token_error = "is invalid"
            return None
        return found.user

    def identity(self, request: Request) -> User | None:
        return self.cache.get_or_create(request)

    def authenticated_userid(self, request: Request) -> int | None:
        user = self.identity(request)
        return None if user is None else user.id

    def effective_principals(self, request: Request) -> list[str]:
        principals = [Everyone]
        user = self.identity(request)
        if user is not None:
            principals += [Authenticated, f"user:{user.id}"]
        return principals

    def permits(self, request: Request, context: Any, permission: str) -> Any:
        return self.acl.permits(context, self.effective_principals(request), permission)

    def remember(self, request: Request, userid: Any, **kw: Any) -> list[tuple[str, str]]:
        """Start a page session; pass ``user=`` to spare a query."""
        user = kw.get("user") or request.dbsession.get(User, userid)
        return [] if user is None else sessions.remember(request, user)

    def forget(self, request: Request, **kw: Any) -> list[tuple[str, str]]:
        return sessions.forget(request)


def includeme(config: Configurator) -> None:
    settings = config.get_settings()
    secret = settings.get("auth.secret")
    if not secret:
        if asbool(settings.get("auth.require_secret", False)):
            raise ConfigurationError("SECRET_KEY (auth.secret) must be set: replicas share it")
        # A random secret works for one process and is never a secret in git;
        # production.ini insists on SECRET_KEY instead.
        log.warning("auth.secret is not set: using a random one, tokens die with this process")
        secret = secrets.token_urlsafe(32)
        settings["auth.secret"] = secret
    config.registry["tokens"] = Tokens(
        str(secret), int(settings.get("auth.token_ttl_seconds", 14 * 24 * 3600))
    )
    config.registry["passwords"] = Passwords(
        time_cost=int(settings.get("auth.argon2_time_cost", 3)),
        memory_cost=int(settings.get("auth.argon2_memory_cost", 65536)),
        parallelism=int(settings.get("auth.argon2_parallelism", 4)),
    )
    config.set_security_policy(SecurityPolicy())
