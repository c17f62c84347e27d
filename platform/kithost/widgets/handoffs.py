"""Checks of an agent's ``handoffs`` beyond their schema (``widgets.config.HandoffAgent``).

Handoff agents pick their tools among the widget's (``agent.tools``, by id), so every tool
is defined, checked and given its secrets once; ``agent.main_tools`` narrows the main agent's
own the same way. The model sees a handoff as a function ``transfer_to_<id>`` (and, from a
handoff agent that may hand back, ``transfer_to_main``), so no function tool may take such
a name.
"""

from __future__ import annotations

from collections.abc import Iterable

from kithost.errors import invalid_field
from kithost.widgets.config import ClientTool, HttpTool, McpTool, WidgetConfig

MAIN = "main"
"""The main agent's id: its handoff is ``transfer_to_main``."""
HANDOFFS = "config.agent.handoffs"


def tool_name(agent_id: str) -> str:
    """The function the model calls to hand the conversation to ``agent_id``."""
    return f"transfer_to_{agent_id}"


def check_handoffs(config: WidgetConfig) -> None:
    """Unique ids and names, tools that exist, no function named like a handoff: a 422
    naming the field at fault."""
    agent = config.agent
    tool_ids = {tool.id for tool in agent.tools}
    functions = _functions(config)
    if agent.main_tools is not None:
        _check_references(agent.main_tools, tool_ids, "config.agent.main_tools")
    ids: set[str] = set()
    names = {agent.name.casefold()}
    for index, handoff in enumerate(agent.handoffs):
        field = f"{HANDOFFS}.{index}"
        if handoff.id == MAIN:
            raise invalid_field(f"{field}.id", "'main' is the main agent's id", "reserved")
        if handoff.id in ids:
            raise invalid_field(f"{field}.id", f"another handoff has the id {handoff.id!r}")
        if tool_name(handoff.id) in functions:
            raise invalid_field(
                f"{field}.id",
                f"the tool {tool_name(handoff.id)!r} has the name of this handoff's function",
                "name_taken",
            )
        if handoff.name.casefold() in names:
            raise invalid_field(
                f"{field}.name", f"another agent is named {handoff.name!r}", "name_taken"
            )
        ids.add(handoff.id)
        names.add(handoff.name.casefold())
        _check_references(handoff.tools, tool_ids, f"{field}.tools")
    back = tool_name(MAIN)
    if any(h.hand_back for h in agent.handoffs) and back in functions:
        raise invalid_field(
            functions[back],
            f"{back!r} is the function handing the conversation back to the main agent",
            "name_taken",
        )


def _functions(config: WidgetConfig) -> dict[str, str]:
    """Each function the model may call by a tool's name (an ``http`` or ``client`` tool's,
    each of an ``mcp`` tool's ``allowed_tools``), with the field naming it."""
    functions: dict[str, str] = {}
    for index, tool in enumerate(config.agent.tools):
        field = f"config.agent.tools.{index}"
        if isinstance(tool, HttpTool | ClientTool):
            functions[tool.name] = f"{field}.name"
        elif isinstance(tool, McpTool):
            for at, name in enumerate(tool.allowed_tools):
                functions[name] = f"{field}.allowed_tools.{at}"
    return functions


def _check_references(references: Iterable[str], tool_ids: set[str], field: str) -> None:
    seen: set[str] = set()
    for index, reference in enumerate(references):
        if reference not in tool_ids:
            raise invalid_field(
                f"{field}.{index}", f"agent.tools has no tool {reference!r}", "tool_not_found"
            )
        if reference in seen:
            raise invalid_field(f"{field}.{index}", f"{reference!r} is listed twice")
        seen.add(reference)
