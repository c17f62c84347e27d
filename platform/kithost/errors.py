"""Typed domain errors and their one rendering: RFC 9457 ``application/problem+json``.

Services raise a :class:`KithostError` subclass; the handlers registered by
:func:`install_error_handlers` turn it (and FastAPI's validation errors, and Starlette's
routing errors) into a problem document with a stable ``code``. Anything else is a bug:
:func:`internal_error_response` logs it and answers 500 without internals.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


class FieldError(BaseModel):
    """One reason a piece of input was refused."""

    field: str
    message: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem document, as every error response carries it."""

    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON


class KithostError(Exception):
    """Base of every error a service may raise on purpose."""

    status: int = 500
    code: str = "internal_error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        errors: Sequence[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.code)
        self.detail = detail
        if code is not None:
            self.code = code
        self.errors = list(errors) if errors else None
        self.headers = headers or {}


class BadRequest(KithostError):
    status, code = 400, "bad_request"


class Unauthorized(KithostError):
    status, code = 401, "unauthorized"


class Forbidden(KithostError):
    status, code = 403, "forbidden"


class NotFound(KithostError):
    status, code = 404, "not_found"


class Conflict(KithostError):
    status, code = 409, "conflict"


class PreconditionFailed(KithostError):
    """An ``If-Match`` that no longer matches: someone changed the resource meanwhile."""

    status, code = 412, "precondition_failed"


class PreconditionRequired(KithostError):
    """A write that must say which version it changes (``If-Match``)."""

    status, code = 428, "precondition_required"


class Gone(KithostError):
    """What was asked for existed but can no longer be used."""

    status, code = 410, "gone"


class InvalidInput(KithostError):
    status, code = 422, "validation_failed"


def invalid_field(field: str, message: str, type: str = "value") -> InvalidInput:
    """A 422 for one bad field."""
    return InvalidInput(message, errors=[FieldError(field=field, message=message, type=type)])


class PayloadTooLarge(KithostError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(KithostError):
    status, code = 415, "unsupported_media_type"


class RateLimited(KithostError):
    status, code = 429, "rate_limited"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


class BadGateway(KithostError):
    status, code = 502, "upstream_unavailable"


class ServiceUnavailable(KithostError):
    status, code = 503, "service_unavailable"


def problem_response(
    request: Request,
    status: int,
    code: str,
    detail: str | None = None,
    *,
    errors: Sequence[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> ProblemResponse:
    problem = Problem(
        title=HTTPStatus(status).phrase,
        status=status,
        code=code,
        detail=detail,
        instance=request.url.path,
        request_id=request.scope.get("state", {}).get("request_id"),
        errors=list(errors) if errors else None,
    )
    return ProblemResponse(problem.model_dump(exclude_none=True), status, headers=headers)


def internal_error_response(request: Request, exc: BaseException) -> ProblemResponse:
    log.error("unhandled_exception", exc_info=exc, path=request.url.path)
    return problem_response(request, 500, "internal_error", "An unexpected error occurred.")


def _field_name(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"} and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts)


def _validation_errors(raw: Sequence[Any]) -> list[FieldError]:
    return [
        FieldError(field=_field_name(e.get("loc", ())), message=e["msg"], type=e["type"])
        for e in raw
    ]


async def _kithost_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, KithostError)
    return problem_response(
        request, exc.status, exc.code, exc.detail, errors=exc.errors, headers=exc.headers
    )


def invalid_request(exc: RequestValidationError) -> InvalidInput:
    """The 422 of a request FastAPI could not validate (its fields named)."""
    return InvalidInput("The request is not valid.", errors=_validation_errors(exc.errors()))


async def _validation_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    return await _kithost_error(request, invalid_request(exc))


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


async def _http_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, HTTPStatus(exc.status_code).phrase.lower())
    headers = exc.headers
    if exc.status_code == 405 and (allowed := _documented_methods(request)):
        headers = {**(headers or {}), "Allow": allowed}
    return problem_response(
        request, exc.status_code, code.replace(" ", "_"), exc.detail, headers=headers
    )


def _documented_methods(request: Request) -> str | None:
    """Every method the API documents at the request's path (Starlette's 405 names only
    those of the first route that matched the path, and each method has a route)."""
    for template, operations in request.app.openapi().get("paths", {}).items():
        pattern = "[^/]+".join(re.escape(part) for part in re.split(r"\{[^}]+\}", template))
        if re.fullmatch(pattern, request.url.path):
            return ", ".join(sorted(method.upper() for method in operations))
    return None


async def _client_gone(request: Request, exc: Exception) -> Response:
    """A client that left mid-request is not an error (and gets no answer)."""
    log.info("client_disconnected", path=request.url.path)
    return Response(status_code=400)


DATABASE_DOWN = (OperationalError, InterfaceError, SQLAlchemyTimeoutError)
"""The database refusing connections, dropping them, or the pool waiting too long for one."""
DATABASE_RETRY_SECONDS = 5


def database_unavailable(exc: Exception, path: str | None = None) -> ServiceUnavailable:
    """The 503 ``database_unavailable`` of a request that met the database away (one of
    :data:`DATABASE_DOWN`), logged: for a route that answers its own problems (a visitor
    route's, with CORS headers) as the app's handler answers the rest."""
    log.warning("database_unavailable", path=path, error=str(exc).splitlines()[0])
    return ServiceUnavailable(
        "The database is not answering; try again shortly.",
        code="database_unavailable",
        headers={"Retry-After": str(DATABASE_RETRY_SECONDS)},
    )


async def _database_unavailable(request: Request, exc: Exception) -> ProblemResponse:
    return await _kithost_error(request, database_unavailable(exc, request.url.path))


def install_error_handlers(app: FastAPI) -> None:
    for error in DATABASE_DOWN:
        app.add_exception_handler(error, _database_unavailable)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(KithostError, _kithost_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
