"""Hosted ChatKit sessions: OpenAI's ``chatkit.sessions.create`` for Agent Builder workflows.

OpenAI shuts Agent Builder down on 2026-11-30; this is the migration path. Upstream
failures become :class:`HostedChatKitFailed`: a problem with a stable code for the visitor,
never a bare 500 and never OpenAI's words (they may quote a masked key) —
``upstream_unavailable`` (OpenAI down, slow or overloaded; 502/503 with ``Retry-After``)
and ``upstream_rejected`` (OpenAI refused the tenant's key, workflow or parameters; 502) —
and OpenAI's message for the tenant (``sessions.service`` records it in its error groups).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import openai
from openai import Omit, omit
from openai.types.beta.chatkit import ChatSessionRateLimitsParam, ChatSessionWorkflowParam

from kithost.errors import BadGateway, KithostError, ServiceUnavailable
from kithost.kit.upstream import openai_client
from kithost.widgets.config import Hosted

RETRY_AFTER_SECONDS = 5
_KEY = re.compile(r"\b(?:sk|ek)-[^\s'\",.]+")
"""What looks like an API key (or a masked one) in OpenAI's messages."""


CONVERT_HINT = (
    "OpenAI shut Agent Builder down on 2026-11-30: convert the widget to a self-hosted agent "
    "(POST /api/v1/tenants/{tenant}/widgets/{id}/convert), then publish."
)


class HostedChatKitFailed(Exception):
    """OpenAI did not create the session: ``problem`` is the visitor's answer, ``reason``
    (OpenAI's message, keys blanked out) the tenant's, ``hint`` what the tenant can do."""

    def __init__(self, problem: KithostError, reason: str, hint: str | None = None) -> None:
        super().__init__(reason)
        self.problem = problem
        self.reason = reason
        self.hint = hint


@dataclass(frozen=True)
class HostedChatKitSession:
    id: str
    client_secret: str
    expires_at: int


async def create_chatkit_session(
    *,
    api_key: str,
    base_url: str | None,
    timeout_seconds: float,
    hosted: Hosted,
    user: str,
    state_variables: dict[str, str | int | float | bool],
) -> HostedChatKitSession:
    workflow: ChatSessionWorkflowParam = {"id": hosted.workflow_id}
    if hosted.version is not None:
        workflow["version"] = hosted.version
    if state_variables:
        workflow["state_variables"] = state_variables
    rate_limits: ChatSessionRateLimitsParam | Omit = omit
    if hosted.max_requests_per_minute is not None:
        rate_limits = {"max_requests_per_1_minute": hosted.max_requests_per_minute}
    configuration: Any = hosted.chatkit_configuration.model_dump(exclude_none=True)
    client = openai_client(api_key, base_url, timeout_seconds)
    try:
        session = await client.beta.chatkit.sessions.create(
            user=user,
            workflow=workflow,
            chatkit_configuration=configuration,
            expires_after={"anchor": "created_at", "seconds": hosted.expires_after_seconds},
            rate_limits=rate_limits,
        )
    except (openai.APITimeoutError, openai.APIConnectionError) as exc:
        raise _unavailable("OpenAI did not answer in time.", ServiceUnavailable) from exc
    except openai.RateLimitError as exc:
        raise _unavailable(f"OpenAI is rate limiting: {_message(exc)}", ServiceUnavailable) from exc
    except openai.InternalServerError as exc:
        raise _unavailable(f"OpenAI failed: {_message(exc)}", BadGateway) from exc
    except openai.NotFoundError as exc:  # the workflow is gone with Agent Builder
        problem = BadGateway(
            "This chat's Agent Builder workflow no longer runs.", code="hosted_workflow_unavailable"
        )
        reason = f"OpenAI no longer runs workflow {hosted.workflow_id}: {_message(exc)}"
        raise HostedChatKitFailed(problem, reason, CONVERT_HINT) from exc
    except openai.APIStatusError as exc:
        problem = BadGateway(
            "The chat service refused to start a session for this widget.",
            code="upstream_rejected",
        )
        raise HostedChatKitFailed(problem, f"OpenAI refused the session: {_message(exc)}") from exc
    return HostedChatKitSession(session.id, session.client_secret, session.expires_at)


def _unavailable(reason: str, error: type[BadGateway | ServiceUnavailable]) -> HostedChatKitFailed:
    problem = error(
        "The chat service is unavailable right now; try again shortly.",
        code="upstream_unavailable",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
    return HostedChatKitFailed(problem, reason)


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return _KEY.sub("[key]", str(body["message"]))
    return f"HTTP {exc.status_code}"
