"""NUL characters (U+0000) in a request's URL, refused before any route runs.

PostgreSQL's text cannot hold a NUL: a query comparing a column with such a string fails
before it is sent (psycopg refuses it), which made any route that looks up what the URL names
(a tenant's slug, a thread's id, a widget's public key, a cursor) answer 500 on PostgreSQL,
where SQLite answered a plain miss. JSON bodies are checked by the schemas (``kit.schemas``);
this middleware checks what every route reads from the URL, in one place:

- a path holding one (``%00``) is 404 ``not_found``: no resource has such a name;
- a query parameter holding one, in its value or its name, is 422 ``validation_failed`` with
  one ``nul_character`` error per parameter (``field``: its name), the error a JSON body's
  field holding one gets.

Header values never hold one: the HTTP server refuses a raw NUL byte (400) before the app
sees the request, and what a route decodes from a header itself (the token endpoint's HTTP
Basic credentials) is checked where it is decoded. No other character is a problem: in UTF-8,
PostgreSQL's text refuses only NUL, and the URL's decoding (uvicorn's, Starlette's) replaces
what is not UTF-8.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from kithost.errors import PROBLEM_JSON, FieldError, problem_response
from kithost.kit.schemas import NUL, NUL_MESSAGE, PROBLEM_REF

_NUL_BYTES = (b"%00", NUL.encode())
"""What a query string holding a NUL contains (a cheap test before parsing it)."""


class NulMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answer = refusal(scope) if scope["type"] == "http" else None
        if answer is None:
            await self.app(scope, receive, send)
        else:
            await answer(scope, receive, send)


def refusal(scope: Scope) -> Response | None:
    """The answer to a request (``scope``) whose URL holds a NUL; None for any other."""
    if NUL in scope["path"]:
        return problem_response(
            Request(scope), 404, "not_found", "No resource has a name holding a NUL character."
        )
    query: bytes = scope.get("query_string", b"")
    if not any(marker in query for marker in _NUL_BYTES):
        return None
    # As Starlette parses it for the routes (``%2500`` is the text "%00", not a NUL).
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    fields = dict.fromkeys(name for name, value in pairs if NUL in name or NUL in value)
    if not fields:
        return None
    return problem_response(
        Request(scope),
        422,
        "validation_failed",
        "Query parameters may not hold NUL characters.",
        errors=[FieldError(field=f, message=NUL_MESSAGE, type="nul_character") for f in fields],
    )


def install_nul_check(app: FastAPI) -> None:
    """Add :class:`NulMiddleware` to ``app`` and say so in its OpenAPI document: every
    operation with a path parameter may answer 404 (FastAPI documents a 422 for every
    operation with parameters already)."""
    app.add_middleware(NulMiddleware)
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                if any(p.get("in") == "path" for p in operation.get("parameters", ())):
                    operation["responses"].setdefault("404", _not_found())
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _not_found() -> dict[str, Any]:
    return {
        "description": HTTPStatus.NOT_FOUND.phrase,
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
    }
