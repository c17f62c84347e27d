"""The OpenAI client Kithost calls upstream with (hosted sessions, the chat runtime)."""

from __future__ import annotations

from functools import lru_cache

from openai import AsyncOpenAI


@lru_cache(maxsize=256)
def openai_client(api_key: str, base_url: str | None, timeout: float) -> AsyncOpenAI:
    """One client (and connection pool) per key and endpoint, reused across requests.

    No retries: a visitor is waiting, and every caller maps failures to a problem.
    """
    return AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)
