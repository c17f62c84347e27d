"""What every API schema shares: the base model, common field types, documented errors."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from kithost.errors import Problem

NUL = "\x00"


def has_nul(value: object) -> bool:
    """Whether ``value`` (a string, or JSON-like lists and dicts of them) holds a NUL
    character, which PostgreSQL's text and JSONB refuse."""
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    return False


class Schema(BaseModel):
    """Base of the API's schemas: built from ORM objects, unknown input fields refused,
    and text holding a NUL character (U+0000) refused in every field, however nested."""

    model_config = ConfigDict(from_attributes=True, extra="forbid")

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        if has_nul(value):
            raise PydanticCustomError("nul_character", "NUL characters (U+0000) are not allowed")
        return value


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
"""A display name: surrounding whitespace dropped, never empty."""

TENANT_ERRORS = (401, 403, 404, 422)
"""What any route under ``/tenants/{tenant}`` may answer before its handler runs."""


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route's error statuses: each a problem document."""
    return {
        status: {"model": Problem, "description": HTTPStatus(status).phrase}
        for status in sorted(set(statuses))
    }
