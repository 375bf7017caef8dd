"""Domain errors. Each carries RealWorld-shaped messages: ``{field: [msg]}``."""

from __future__ import annotations

ErrorMap = dict[str, list[str]]


class DomainError(Exception):
    status = 400

    def __init__(self, errors: ErrorMap):
        super().__init__(errors)
        self.errors = errors


class Invalid(DomainError):
    """The input breaks a rule (422)."""

    status = 422


class Conflict(DomainError):
    """A unique value is already taken (409)."""

    status = 409


class NotFound(DomainError):
    """``resource`` does not exist (404)."""

    status = 404

    def __init__(self, resource: str):
        super().__init__({resource: ["not found"]})
        self.resource = resource


class Forbidden(DomainError):
    """The caller may not change ``resource`` (403)."""

    status = 403

    def __init__(self, resource: str):
        super().__init__({resource: ["forbidden"]})
        self.resource = resource
