from __future__ import annotations

from typing import Any

from kithost.kit.schemas import Schema


class EmbedConfig(Schema):
    """What the loader gets: the published version's public configuration."""

    public_key: str
    version: int
    """The published version number."""
    config: dict[str, Any]
    """``WidgetConfig.public()``: mode, placement, chatkit, launcher, actions, require_identity,
    client_tools (the agent's ``client`` tools: name → timeout in seconds)."""
    domain_key: str | None
    """Direct placement only: the OpenAI domain key registered for the requesting origin."""
    chatkit_script_url: str
    """Where ChatKit's script loads from (``KITHOST_CHATKIT_SCRIPT_URL``): the direct
    placement loads it into the page."""
