"""A widget's ``client`` tools: functions the host page implements.

When the model calls one, the answer stops there (:func:`stop_at_client_call`, the agent's
``tool_use_behavior``): the call becomes ChatKit's client tool call (``AgentContext.
client_tool_call``, which ``stream_agent_response`` streams and the store keeps as a pending
``client_tool_call`` item). ChatKit.js hands it to ``onClientTool``; Kithost's chat
(``embed/src/chat.ts``) asks the page's handler (``kithost('on', 'tool:NAME', fn)``, through
the loader) and sends what it answers — or ``{"error": …}`` when there is no handler, it
fails or it takes longer than the tool's ``timeout_seconds`` — with
``threads.add_client_tool_output``. The SDK stores it on the item and calls ``respond``
again: the history then holds the call and its output, and the model continues from them.

An output needs a pending call to answer (:func:`check_output`; else 409
``no_pending_tool_call``), and a call takes one output: of outputs sent at once, the store
completes the call with the first (``SqlStore.save_item``, the call's row locked) and
refuses the others with the same 409, before the model is asked. It is stored as JSON (a
NUL character, refused in any request by the endpoint: 422, ``params.result.…`` of type
``nul_character``).

The output is the visitor's page's text on its way to the model: the guardrails check it
before the SDK stores it (``ChatServer.process_request``, ``guardrails.output_texts``). One
that trips one is stored as :data:`REFUSED_OUTPUT` instead, and answered with the widget's
refusal message: what the page sent is kept nowhere, so no later answer can read it.
"""

from __future__ import annotations

import json

from agents import FunctionTool, FunctionToolResult, RunContextWrapper, ToolsToFinalOutputResult
from agents.tool_context import ToolContext
from chatkit.agents import AgentContext, ClientToolCall
from chatkit.types import ChatKitReq, ClientToolCallItem, ProgressUpdateEvent
from chatkit.types import ThreadsAddClientToolOutputReq as OutputRequest

from kithost.chat.context import ChatContext
from kithost.chat.errors import no_pending_tool_call
from kithost.chat.store import SqlStore
from kithost.widgets.config import ClientTool

REFUSED_OUTPUT = {"error": "The page's answer was refused by this chat's guardrails."}
"""The output stored, and read by the model in later answers, for one a guardrail refused."""


def function_tool(tool: ClientTool) -> FunctionTool:
    """``tool`` as the model sees it; calling it records ChatKit's client tool call."""

    async def invoke(run: ToolContext[AgentContext[ChatContext]], raw: str) -> str:
        context = run.context
        try:
            arguments = json.loads(raw or "{}")
        except ValueError:
            return _error("The arguments are not JSON.")
        if not isinstance(arguments, dict):
            return _error("The arguments are not a JSON object.")
        if context.client_tool_call is not None:
            return _error("The page runs one tool at a time; call this one again afterwards.")
        await context.stream(ProgressUpdateEvent(icon="bolt", text=tool.label))
        context.client_tool_call = ClientToolCall(name=tool.name, arguments=arguments)
        return ""  # never read: the answer stops here, the page's answer follows

    return FunctionTool(
        name=tool.name,
        description=tool.description,
        params_json_schema=tool.parameters,
        on_invoke_tool=invoke,
        strict_json_schema=False,
    )


def stop_at_client_call(
    run: RunContextWrapper[AgentContext[ChatContext]], results: list[FunctionToolResult]
) -> ToolsToFinalOutputResult:
    """An agent's ``tool_use_behavior``: the answer ends once a client tool was called (the
    page answers in a request of its own); other tools' results go back to the model."""
    if run.context.client_tool_call is None:
        return ToolsToFinalOutputResult(is_final_output=False)
    return ToolsToFinalOutputResult(is_final_output=True, final_output="")


async def check_output(store: SqlStore, request: ChatKitReq, context: ChatContext) -> None:
    """An output (``threads.add_client_tool_output``) answers the thread's pending call;
    nothing to check for other requests."""
    if not isinstance(request, OutputRequest):
        return
    latest = await store.load_thread_items(request.params.thread_id, None, 1, "desc", context)
    last = latest.data[0] if latest.data else None
    if not isinstance(last, ClientToolCallItem) or last.status != "pending":
        raise no_pending_tool_call()


def _error(message: str) -> str:
    return json.dumps({"error": message})
