"""The agent's handoffs (``agent.handoffs``) on the Agents SDK's own handoffs.

Each handoff agent is built like the main agent (``chat.agent.agent``) from the main
agent's configuration with its own instructions, model settings and tools (picked among
``agent.tools`` by id), so it answers with the same endpoint and key; the main agent's own
tools are ``agent.main_tools`` (all when null). The main agent may hand the conversation to
each of them (the function ``transfer_to_<id>``); one with ``hand_back`` may give it back
(``transfer_to_main``).

The visitor sees a handoff as a task item in the thread, "Transferred to <name>" (stored with
the thread, so it still marks whose answers follow after a reload): ChatKit's assistant
messages carry no author of their own. The thread remembers the agent that took over (its
server-only ``metadata["agent"]``), and its later turns go on with that agent, as the
Agents SDK's own examples do with ``last_agent``; an agent the published config no longer
has gives the turn to the main agent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from agents import Agent, Handoff, RunContextWrapper, handoff
from chatkit.agents import AgentContext
from chatkit.types import CustomTask, TaskItem, ThreadItemDoneEvent, ThreadMetadata

from kithost.chat.context import ChatContext
from kithost.chat.store import new_id
from kithost.widgets.config import Agent as AgentConfig
from kithost.widgets.config import HandoffAgent
from kithost.widgets.handoffs import MAIN, tool_name

ChatAgent = Agent[AgentContext[ChatContext]]
Build = Callable[[AgentConfig], ChatAgent]
"""Builds the SDK agent of a configuration (``chat.agent.agent`` with the request's parts)."""
CURRENT = "agent"
"""The thread's ``metadata`` key naming the handoff agent that answers (absent: the main)."""
BACK = "The main agent: hand the conversation back for anything outside what you handle."


def starting_agent(config: AgentConfig, thread: ThreadMetadata, build: Build) -> ChatAgent:
    """The agent that answers this turn of ``thread``, with every handoff wired."""
    main = build(_with_tools(config, config.main_tools))
    if not config.handoffs:
        return main
    team = {MAIN: main.clone(name=config.name, handoff_description=BACK)}
    for member in config.handoffs:
        team[member.id] = build(_member_config(config, member)).clone(
            name=member.name, handoff_description=member.description or None
        )
    team[MAIN].handoffs = [_handoff(team[m.id], m.id) for m in config.handoffs]
    for member in config.handoffs:
        team[member.id].handoffs = [_handoff(team[MAIN], MAIN)] if member.hand_back else []
    current = thread.metadata.get(CURRENT)
    return team.get(current, team[MAIN]) if isinstance(current, str) else team[MAIN]


def _member_config(config: AgentConfig, member: HandoffAgent) -> AgentConfig:
    settings = {
        "instructions": member.instructions,
        "model": member.model or config.model,
        "temperature": member.temperature,
        "max_output_tokens": member.max_output_tokens,
        "reasoning_effort": member.reasoning_effort,
    }
    return _with_tools(config.model_copy(update=settings), member.tools)


def _with_tools(config: AgentConfig, ids: list[str] | None) -> AgentConfig:
    """``config`` with only the tools ``ids`` names (all when None), and no handoffs."""
    tools = config.tools if ids is None else [t for t in config.tools if t.id in set(ids)]
    return config.model_copy(update={"tools": tools, "handoffs": [], "main_tools": None})


def _handoff(target: ChatAgent, agent_id: str) -> Handoff[AgentContext[ChatContext], ChatAgent]:
    async def transferred(run: RunContextWrapper[AgentContext[ChatContext]]) -> None:
        await _transferred(run.context, agent_id, target.name)

    return handoff(target, tool_name_override=tool_name(agent_id), on_handoff=transferred)


async def _transferred(context: AgentContext[ChatContext], agent_id: str, name: str) -> None:
    """Remember who answers from now on and show the visitor (saved with the thread)."""
    metadata = context.thread.metadata
    if agent_id == MAIN:
        metadata.pop(CURRENT, None)
    else:
        metadata[CURRENT] = agent_id
    task = CustomTask(title=f"Transferred to {name}", icon="agent")
    item = TaskItem(
        id=new_id("task"), thread_id=context.thread.id, created_at=datetime.now(), task=task
    )
    await context.stream(ThreadItemDoneEvent(item=item))
