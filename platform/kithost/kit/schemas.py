"""What every API schema shares: the base model, common field types, documented errors."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints

from kithost.errors import Problem


class Schema(BaseModel):
    """Base of the API's schemas: built from ORM objects, unknown input fields refused."""

    model_config = ConfigDict(from_attributes=True, extra="forbid")


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
