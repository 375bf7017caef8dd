"""Request bodies and query strings, checked against the OpenAPI spec.

The request schemas come straight from ``openapi.yml`` (the RealWorld
contract, shipped in this package): required fields, types and nullability
are the spec's, not hand-written. Content rules the spec does not state
(blank, lengths, formats) live in :mod:`myapp.services.rules`, shared with
the pages.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from pyramid.request import Request
from referencing import Registry, Resource

from myapp.api.errors import ApiError
from myapp.services.errors import Invalid

JSON_TYPES = {"application/json", "text/json"}
NUL_MESSAGE = "must not contain NUL characters"
BIGINT_MAX = 2**63 - 1
# Far above any legal list (rules cap tags at 20, after dropping repeats).
MAX_LIST_ITEMS = 1000
TYPE_MESSAGES = {
    "string": "must be a string",
    "array": "must be an array",
    "object": "must be an object",
    "integer": "must be an integer",
    "boolean": "must be true or false",
}


@cache
def spec() -> dict[str, Any]:
    text = files("myapp.api").joinpath("openapi.yml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


@cache
def _registry() -> Registry:
    return Registry().with_resource(
        "urn:openapi", Resource.from_contents(spec(), default_specification=_draft())
    )


def _draft() -> Any:
    from referencing.jsonschema import DRAFT202012

    return DRAFT202012


@cache
def body_validator(request_body: str) -> Draft202012Validator:
    """Validator for ``components.requestBodies[request_body]``'s JSON schema."""
    schema = spec()["components"]["requestBodies"][request_body]["content"]["application/json"][
        "schema"
    ]
    schema = _rebase(schema)
    return Draft202012Validator(schema, registry=_registry())


def _rebase(node: Any) -> Any:
    """Point local ``#/components/...`` references at the registered spec."""
    if isinstance(node, dict):
        return {
            key: (
                "urn:openapi" + value if key == "$ref" and value.startswith("#") else _rebase(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rebase(item) for item in node]
    return node


def json_body(request: Request) -> Any:
    """The parsed JSON body; 415 for a non-JSON content type, 422 for bad JSON."""
    content_type = request.content_type or ""
    if content_type and content_type not in JSON_TYPES and not content_type.endswith("+json"):
        raise ApiError(415, {"body": ["must be JSON (Content-Type: application/json)"]})
    try:
        text = request.body.decode("utf-8")
        value = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # RecursionError: "[[[[..." nested deeper than the parser's stack.
        raise ApiError(422, {"body": ["is not valid JSON"]}) from exc
    try:
        # An escape such as "\ud800" parses to a lone surrogate, which no UTF-8
        # text (so no Postgres column) can hold: the query would fail, a 500.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ApiError(422, {"body": ["must not contain unpaired surrogates"]}) from exc
    return value


def _field(error: ValidationError) -> str:
    names = [part for part in error.absolute_path if isinstance(part, str)]
    return names[-1] if names else "body"


def _message(error: ValidationError) -> tuple[str, str]:
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        return (missing[0] if missing else _field(error)), "can't be blank"
    if error.validator == "type":
        expected = error.validator_value
        if isinstance(expected, list):
            expected = next(t for t in expected if t != "null")
        field = _field(error)
        if error.absolute_path and isinstance(error.absolute_path[-1], int):
            return field, "must contain only strings"
        return field, TYPE_MESSAGES.get(expected, f"must be of type {expected}")
    return _field(error), "is invalid"


def validated_body(request: Request, request_body: str, wrapper: str) -> dict[str, Any]:
    """The ``wrapper`` object of a body that satisfies the spec's ``request_body``."""
    body = json_body(request)
    errors: dict[str, list[str]] = {}
    if not isinstance(body, dict):
        raise Invalid({"body": [f'must be a JSON object with a "{wrapper}" key']})
    _refuse_long_lists(body.get(wrapper))
    for error in sorted(body_validator(request_body).iter_errors(body), key=lambda e: e.path):
        if list(error.absolute_path) == [] and error.validator == "required":
            raise Invalid({wrapper: ["can't be blank"]})
        if list(error.absolute_path) == [wrapper] and error.validator == "type":
            raise Invalid({wrapper: ["must be an object"]})
        field, message = _message(error)
        if message not in errors.get(field, []):
            errors.setdefault(field, []).append(message)
    if errors:
        raise Invalid(errors)
    data = body[wrapper]
    # Postgres text cannot hold NUL: psycopg2 raises ValueError (a 500) at
    # the query, so refuse it here, per field, like any other bad value.
    for field, value in data.items():
        values = value if isinstance(value, list) else [value]
        if any(isinstance(item, str) and "\x00" in item for item in values):
            errors[field] = [NUL_MESSAGE]
    if errors:
        raise Invalid(errors)
    return data


def _refuse_long_lists(data: Any) -> None:
    """No request field is a long list (an article has at most 20 tags), but
    jsonschema spends ~10 µs per item and far more per error: a 1 MB body of
    300k numbers would pin a worker for seconds. Refuse before validating."""
    if not isinstance(data, dict):
        return
    for field, value in data.items():
        if isinstance(value, list) and len(value) > MAX_LIST_ITEMS:
            raise Invalid({field: [f"has too many items (maximum is {MAX_LIST_ITEMS})"]})


def int_param(
    request: Request, name: str, default: int, minimum: int, maximum: int | None = None
) -> int:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise Invalid({name: ["must be an integer"]}) from exc
    if value < minimum:
        raise Invalid({name: [f"must be greater than or equal to {minimum}"]})
    if maximum is not None:
        value = min(value, maximum)
    if value > BIGINT_MAX:
        # Beyond BIGINT Postgres fails the query with a DataError (a 503).
        raise Invalid({name: [f"must be less than or equal to {BIGINT_MAX}"]})
    return value


def str_param(request: Request, name: str) -> str | None:
    value = request.GET.get(name)
    if value and "\x00" in value:
        raise Invalid({name: [NUL_MESSAGE]})
    return value if value else None
