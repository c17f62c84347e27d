"""The answer to a CORS preflight of a visitor route; the route checks the origin first."""

from __future__ import annotations

from starlette.responses import Response

PREFLIGHT_MAX_AGE_SECONDS = 600


def preflight(origin: str, *, method: str, headers: str) -> Response:
    """204 allowing ``origin`` (``*`` for any) to send ``method`` with request ``headers``;
    browsers keep it for :data:`PREFLIGHT_MAX_AGE_SECONDS`."""
    return Response(
        status_code=204,
        headers={
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": method,
            "Access-Control-Allow-Headers": headers,
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
            "Vary": "Origin",
        },
    )
