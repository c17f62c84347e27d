"""The OpenAI clients Kithost calls upstream with (hosted sessions, the chat runtime).

Two kinds, never mixed: the operator's endpoint (``KITHOST_OPENAI_BASE_URL``, else OpenAI's)
with the tenant's or the platform's key, and an endpoint a tenant chose (a widget's
``agent.base_url``) with the key the tenant gave for it, through :mod:`kithost.kit.outbound`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from openai import AsyncOpenAI, omit

from kithost.kit.outbound import OutboundPolicy, outbound_client


@dataclass(frozen=True)
class ModelEndpoint:
    """Where a model is called and with which key."""

    base_url: str | None
    """None: OpenAI's."""
    api_key: str = field(repr=False)
    chosen_by_tenant: bool
    """A URL the tenant typed: only the tenant's own key for it may go there."""


@lru_cache(maxsize=256)
def openai_client(api_key: str, base_url: str | None, timeout: float) -> AsyncOpenAI:
    """One client (and connection pool) per key and endpoint, reused across requests.

    No retries: a visitor is waiting, and every caller maps failures to a problem.
    """
    return AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)


@lru_cache(maxsize=256)
def tenant_endpoint_client(
    api_key: str, base_url: str, timeout: float, policy: OutboundPolicy
) -> AsyncOpenAI:
    """A client for an OpenAI-compatible API at a URL a tenant chose: its connections reach
    public addresses only (and what ``policy`` allows), and it sends the tenant's key and
    nothing the process's environment would add (``OPENAI_CUSTOM_HEADERS`` may carry an
    ``Authorization``; ``OPENAI_ORG_ID``/``OPENAI_PROJECT_ID`` name the operator's account)."""
    headers: dict[str, Any] = {
        "Authorization": f"Bearer {api_key}",
        "OpenAI-Organization": omit,
        "OpenAI-Project": omit,
    }
    return AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        timeout=timeout,
        max_retries=0,
        http_client=outbound_client(policy, timeout=timeout),
        default_headers=headers,
    )


def model_client(endpoint: ModelEndpoint, timeout: float, policy: OutboundPolicy) -> AsyncOpenAI:
    if endpoint.chosen_by_tenant and endpoint.base_url is not None:
        return tenant_endpoint_client(endpoint.api_key, endpoint.base_url, timeout, policy)
    return openai_client(endpoint.api_key, endpoint.base_url, timeout)
