"""What every API schema shares: the base model, common field types, documented errors."""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Any, TypeVar

from fastapi import FastAPI
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    StringConstraints,
    field_validator,
)
from pydantic_core import PydanticCustomError

from kithost.errors import PROBLEM_JSON, Problem
from kithost.kit.visible import INVISIBLE_MESSAGE, INVISIBLE_TYPE, has_invisible

NUL = "\x00"
Value = TypeVar("Value")


NUL_MESSAGE = "NUL characters (U+0000) are not allowed"


def has_nul(value: object) -> bool:
    """Whether ``value`` (a string, or JSON-like lists and dicts of them) holds a NUL
    character, which PostgreSQL's text and JSONB refuse."""
    return nul_at(value) is not None


def nul_at(value: object) -> list[str | int] | None:
    """Where ``value`` (as :func:`has_nul`) first holds a NUL character: the keys and
    indexes down to it (empty for ``value`` itself); None where it holds none."""
    if isinstance(value, str):
        return [] if NUL in value else None
    entries: list[tuple[str | int, object]] = []
    if isinstance(value, dict):
        entries = list(value.items())
    elif isinstance(value, list | tuple):
        entries = list(enumerate(value))
    for key, entry in entries:
        if isinstance(key, str) and NUL in key:
            return [key]
        found = nul_at(entry)
        if found is not None:
            return [key, *found]
    return None


def _refuse_nul(value: Value) -> Value:
    """``value`` unless it holds a NUL character (:func:`has_nul`): a validation error."""
    if has_nul(value):
        raise PydanticCustomError("nul_character", NUL_MESSAGE)
    return value


class Schema(BaseModel):
    """Base of the API's schemas: built from ORM objects, unknown input fields refused,
    and text holding a NUL character (U+0000) refused in every field, however nested."""

    model_config = ConfigDict(from_attributes=True, extra="forbid")

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        return _refuse_nul(value)


def refuse_invisible(value: str) -> str:
    """``value`` unless it holds a character that reorders or hides what people read
    (:func:`~kithost.kit.visible.has_invisible`): a validation error (a NUL character's
    own, :func:`_refuse_nul`, when it holds one)."""
    if has_invisible(_refuse_nul(value)):
        raise PydanticCustomError(INVISIBLE_TYPE, INVISIBLE_MESSAGE)
    return value


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(refuse_invisible),
]
"""A display name: surrounding whitespace dropped, never empty, every character visible."""


SearchText = Annotated[
    str, StringConstraints(min_length=1, max_length=100), AfterValidator(_refuse_nul)
]
"""A list's ``q`` query parameter: text the rows' names hold, in any case."""


def _in_utc(moment: datetime) -> datetime:
    """``moment`` in UTC, as the database stores and compares it. An offset can carry a
    time past year 1 or 9999 (``9999-12-31T23:59:59-14:00``), which ``datetime`` cannot
    hold in UTC: the client's mistake, so a validation error rather than an
    ``OverflowError`` where the value is bound."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError(
            "datetime_out_of_range", "in UTC the time must fall within the years 1 to 9999"
        ) from None


Instant = Annotated[AwareDatetime, AfterValidator(_in_utc)]
"""A moment a client gives (a query parameter, a body field), in UTC. It needs a time zone
or offset (the database compares instants, and a naive time names none: 422
``timezone_aware``) and must exist in UTC (422 ``datetime_out_of_range``): every ``since``,
``until`` and the like a client sends is one, so none reaches the database unfit."""

TENANT_ERRORS = (401, 403, 404, 422)
"""What any route under ``/tenants/{tenant}`` may answer before its handler runs."""


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route's error statuses: each a problem document."""
    return {
        status: {"model": Problem, "description": HTTPStatus(status).phrase}
        for status in sorted(set(statuses))
    }


PROBLEM_REF = "#/components/schemas/Problem"
ERROR_SCHEMAS = {PROBLEM_REF, "#/components/schemas/HTTPValidationError"}


def _problem(status: int) -> dict[str, Any]:
    return {
        "description": HTTPStatus(status).phrase,
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
    }


def document_problems(app: FastAPI) -> None:
    """Make the OpenAPI document say what error responses are: ``problems()`` gives each a
    ``Problem`` model, which FastAPI documents as ``application/json``, and FastAPI adds its
    own 422 shape; the handlers answer every error as an ``application/problem+json``
    ``Problem``."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        schemas = document["components"]["schemas"]
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.get("responses", {})
                for status, response in responses.items():
                    json = response.get("content", {}).get("application/json", {})
                    if status[0] in "45" and json.get("schema", {}).get("$ref") in ERROR_SCHEMAS:
                        response["content"] = {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}
                if "requestBody" in operation:
                    for status in (400, 413):  # a body that is not JSON; one too large
                        responses.setdefault(str(status), _problem(status))
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
