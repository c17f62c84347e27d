from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from kithost.kit.schemas import Schema


class McpSecret(Schema):
    """That a tool's secret is set, and for which server: the secret is never shown again."""

    tool_id: str
    origin: str = Field(description="The server (`scheme://host:port`) it is sent to, only.")
    updated_at: datetime


class McpSecretUpdate(Schema):
    value: str = Field(
        min_length=1,
        max_length=4096,
        pattern=r"^[\x20-\x7e]+$",
        description="The header's whole value (e.g. `Bearer …`): printable ASCII.",
    )


class ServerTool(Schema):
    name: str
    description: str | None
    input_schema: dict[str, Any]
    allowed: bool = Field(description="Whether the tool's `allowed_tools` names it.")


class Discovery(Schema):
    """The tools an ``mcp`` tool's server has, as it answered just now."""

    tool_id: str
    tools: list[ServerTool]
    missing_tools: list[str] = Field(
        description="Names in `allowed_tools` the server does not have."
    )
