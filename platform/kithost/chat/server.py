"""Kithost's ``ChatKitServer``: answers with the widget's published ``agent`` config.

One instance per request (it is two attribute assignments), over the SQL store. A response
runs the Agents SDK with the widget's model and instructions (Responses or Chat Completions,
any OpenAI-compatible ``base_url`` with the widget's model key, else the tenant's or the
platform's key; ``secrets.service.model_endpoint``), the thread's latest items as
history, streamed by ``stream_agent_response``. Besides answering:

- the first message titles the thread once answered (its text, shortened: no extra
  model call);
- feedback is stored on the items and reported;
- a thread or item the end user cannot see is a 404, kept out of the error log
  (:class:`NotFoundIsNoError`);
- a cancelled response keeps its partial answer (the SDK's default, run shielded from the
  cancellation so its writes complete);
- widget actions the loader forwards (mapped to ``forward``, or not mapped at all) reach
  :meth:`action`, which records them as hidden context and lets the agent answer (the
  guardrails read their type and payload first, as a message's text); actions the config
  maps to something the loader does itself are refused here;
- beyond ``messages_per_user_per_day`` (messages in the last 24 hours) the chat answers
  with a ChatKit ``notice`` instead of the model. A message is every request that makes the
  agent answer: a user message, a retry, a widget action the agent answers, a client
  tool's output (``SqlStore.spend_quota``; ``models.ChatQuotaUse``). A new user message
  over the quota is removed again, so it neither stays unanswered nor counts; a retry over
  it is refused before the answers it would replace are deleted. Each is counted with those
  counted before it, the end user held (``SqlStore.messages_sent``): of messages sent at
  once, as many are answered as the quota allows, no more;
- what a guardrail refuses (a message, a widget action, a client tool's output) never
  reaches the model, in its answer or any later one. A refused message stays in the thread
  for the visitor (and the tenant's staff), marked for the store before it is written
  (checked before the quota, which writes it) so that no answer, not even one running at
  the same moment, reads it unmarked (a mark per item, ``SqlStore.refused``: a list in the
  thread's metadata would be overwritten by requests sent at once); the refusal answering
  it is marked too, and the model's history leaves both out (``agent.Converter.history``).
  A message whose check failed (moderation unavailable) is marked as well. A refused action
  is never noted. A refused tool output is checked before the SDK stores it, and stored as
  ``client_tools.REFUSED_OUTPUT`` instead: nothing of it is kept to leave out.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime
from typing import Any

import anyio
from agents import MaxTurnsExceeded, RunConfig, Runner, Tool
from chatkit.actions import Action
from chatkit.agents import AgentContext, stream_agent_response
from chatkit.errors import CustomStreamError
from chatkit.server import ChatKitServer, NonStreamingResult, StreamingResult
from chatkit.store import NotFoundError
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageContentPartTextDelta,
    AssistantMessageItem,
    ChatKitReq,
    ClientToolCallItem,
    ErrorEvent,
    FeedbackKind,
    HiddenContextItem,
    NoticeEvent,
    ThreadItem,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemRemovedEvent,
    ThreadItemUpdatedEvent,
    ThreadMetadata,
    ThreadsAddClientToolOutputReq,
    ThreadsRetryAfterItemReq,
    ThreadStreamEvent,
    UserMessageItem,
    UserMessageTextContent,
    WidgetItem,
    is_streaming_req,
)
from openai import AsyncOpenAI, OpenAIError
from pydantic import TypeAdapter

from kithost import rls
from kithost.chat import agent, client_tools, demo_model, guardrails, handoffs
from kithost.chat.context import ChatContext
from kithost.chat.errors import GONE_EVENT, ChatGone, sse
from kithost.chat.http_tool import HttpToolRunner
from kithost.chat.store import SqlAttachmentStore, SqlStore, new_id
from kithost.db import session_scope
from kithost.errors import Conflict, KithostError
from kithost.kit.crypto import SecretBox
from kithost.kit.outbound import Resolver, refused_in, system_resolver
from kithost.kit.upstream import ModelClients, ModelEndpoint
from kithost.kit.visible import without_invisible
from kithost.knowledge import repository as knowledge
from kithost.knowledge.ingest import missing_store
from kithost.mcp_tools.client import McpConnections, McpConnector
from kithost.mcp_tools.service import answer_connections
from kithost.secrets.service import model_endpoint, widget_tool_secret
from kithost.settings import Settings
from kithost.widgets.config import FileSearch, Forward, Guardrails

_REQUEST: TypeAdapter[ChatKitReq] = TypeAdapter(ChatKitReq)
TITLE_LENGTH = 60
ACTION_NOTE_LENGTH = 2000
QUOTA_NOTICE = NoticeEvent(
    level="warning",
    title="Message limit reached",
    message="You have sent as many messages as this chat allows for now. Please try again later.",
)


class NotFoundIsNoError(logging.Filter):
    """Keeps out of the SDK's log what the store raises for what the end user cannot see
    (``errors.ChatNotFound``: another visitor's thread, an id made up), what is no longer
    there (``errors.ChatGone``: the widget was deleted meanwhile, logged at info by the
    store) and the conflicts it answers (a tool call another output answered meanwhile:
    ``errors.no_pending_tool_call``). The SDK logs every exception a stream raises at error
    level with its traceback ("Error while generating streamed response"), before the
    endpoint answers it as the 404 or 409 it is: any visitor could fill the error log and
    bury real errors. Every other exception is still logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (
            isinstance(error, NotFoundError | ChatGone)
            or (isinstance(error, KithostError) and error.status < 500)
        )


logging.getLogger("chatkit").addFilter(NotFoundIsNoError())


class ChatServer(ChatKitServer[ChatContext]):
    store: SqlStore
    attachment_store: SqlAttachmentStore

    def __init__(
        self,
        store: SqlStore,
        attachment_store: SqlAttachmentStore,
        *,
        settings: Settings,
        box: SecretBox,
        models: ModelClients,
        new_message: bool,
        resolver: Resolver = system_resolver,
    ) -> None:
        super().__init__(store, attachment_store)
        self.settings = settings
        self.box = box
        self.models = models
        self.resolver = resolver
        """How tenant-chosen tool URLs resolve (tests answer for names)."""
        self.new_message = new_message
        """Whether this request adds the user message ``respond`` gets (not a retry)."""
        self._mcp: list[McpConnections] = []
        """The MCP servers the answers hold open, closed when the response ends."""
        self._output_refused = False
        """Whether a guardrail refused the client tool output this request sends."""

    async def process(
        self, request: str | bytes | bytearray, context: ChatContext
    ) -> StreamingResult | NonStreamingResult:
        """The SDK's entry point, with this server's handling (:meth:`process_request`): a
        response that ends before its first token still stores the user's message."""
        return await self.process_request(_REQUEST.validate_json(request), context)

    async def process_request(
        self, request: ChatKitReq, context: ChatContext
    ) -> StreamingResult | NonStreamingResult:
        """:meth:`process` for a request the endpoint has parsed already."""
        if is_streaming_req(request):
            if isinstance(request, ThreadsRetryAfterItemReq) and not await self._may_retry(
                request, context
            ):
                return StreamingResult(self._only(QUOTA_NOTICE))
            if isinstance(request, ThreadsAddClientToolOutputReq):
                try:
                    await self._check_output(request, context)
                except CustomStreamError as exc:
                    error = ErrorEvent(
                        code="custom", message=exc.message, allow_retry=exc.allow_retry
                    )
                    return StreamingResult(self._only(error))
            return StreamingResult(self._settled(self._process_streaming(request, context)))
        return NonStreamingResult(await self._process_non_streaming(request, context))

    async def _only(self, *events: ThreadStreamEvent) -> AsyncGenerator[bytes, None]:
        """A stream of ``events`` alone, as the SDK streams events."""
        for event in events:
            yield b"data: " + self._serialize(event) + b"\n\n"

    async def _may_retry(self, request: ThreadsRetryAfterItemReq, context: ChatContext) -> bool:
        """Whether the retry may go on; counted against the quota (``SqlStore.spend_quota``)
        here, before the SDK deletes the answers it replaces. A thread or item the end user
        cannot see is a 404 (the SDK would look for it through the whole thread, and stream
        nothing); an item that is not a user message is the SDK's to refuse."""
        params = request.params
        await self.store.load_thread(params.thread_id, context)
        item = await self.store.load_item(params.thread_id, params.item_id, context)
        return not isinstance(item, UserMessageItem) or await self.store.spend_quota(
            "retry", context
        )

    async def _settled(self, events: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
        """``events``, then the store's write behind the response (its error, if any), and
        the error saying the chat is no longer available when its widget was deleted
        meanwhile (the response ran on without writing: ``SqlStore.gone_untold``)."""
        try:
            async for event in events:
                yield event
            try:
                await self.store.settled()
            except ChatGone:
                self.store.gone_untold = True
            if self.store.gone_untold:  # the widget was deleted meanwhile
                yield sse(GONE_EVENT)
        finally:
            self.store.release()  # a closed or cancelled response: the write still goes in
            for mcp in self._mcp:
                await mcp.close()

    async def respond(
        self,
        thread: ThreadMetadata,
        input_user_message: UserMessageItem | None,
        context: ChatContext,
    ) -> AsyncIterator[ThreadStreamEvent]:
        if input_user_message is None:  # a client tool's output (checked: process_request)
            if not await self.store.spend_quota("tool_output", context):
                yield QUOTA_NOTICE
            elif self._output_refused:
                yield self._refusal(thread, context)
            else:
                async for event in self._answer(thread, context):
                    yield event
            return
        quota = context.widget.widget_config.agent.messages_per_user_per_day
        removed = False
        try:
            passed = await self._check_message(thread, input_user_message, context)
            # A retry (a user message that is not new) was counted before it began (_may_retry).
            if (
                quota is not None
                and self.new_message
                and await self.store.messages_sent(input_user_message, context) > quota
            ):
                removed = True
                yield ThreadItemRemovedEvent(item_id=input_user_message.id)
                yield QUOTA_NOTICE
                return
            if not passed:
                yield self._refusal(thread, context)
                return
            async for event in self._answer(thread, context):
                yield event
        finally:
            # Titled after the answer: one write less before its first token.
            if not removed and thread.title is None:
                thread.title = title_of(input_user_message)

    async def action(
        self,
        thread: ThreadMetadata,
        action: Action[str, Any],
        sender: WidgetItem | None,
        context: ChatContext,
    ) -> AsyncIterator[ThreadStreamEvent]:
        mapped = context.widget.widget_config.actions.get(action.type)
        if mapped is not None and not isinstance(mapped, Forward):
            raise CustomStreamError("This action is not available.")
        if not await self.store.spend_quota("action", context):
            yield QUOTA_NOTICE
            return
        texts = guardrails.action_texts(action.type, action.payload)
        if await self._tripped(thread.id, texts, context):
            yield self._refusal(thread, context)  # the action is not noted: none reads it
            return
        payload = texts[1]
        note = f"The visitor used the widget action {action.type!r} with payload {payload}"
        if sender is not None:
            note += f" on widget item {sender.id}"
        yield ThreadItemDoneEvent(
            item=HiddenContextItem(
                id=new_id("message"),
                thread_id=thread.id,
                created_at=datetime.now(),
                content=note[:ACTION_NOTE_LENGTH],
            )
        )
        async for event in self._answer(thread, context):
            yield event

    async def add_feedback(
        self, thread_id: str, item_ids: list[str], feedback: FeedbackKind, context: ChatContext
    ) -> None:
        await self.store.set_feedback(thread_id, item_ids, feedback, context)

    async def handle_stream_cancelled(
        self, thread: ThreadMetadata, pending_items: list[ThreadItem], context: ChatContext
    ) -> None:
        # The request's task is being cancelled (the visitor left or pressed stop): without
        # the shield, the first write would be cancelled too.
        with anyio.CancelScope(shield=True):
            await super().handle_stream_cancelled(thread, pending_items, context)
            if not self.store.gone:  # else nothing is left to report on (``answers``)
                self.store.report(
                    context, "response.failed", thread_id=thread.id, error="cancelled"
                )

    async def _answer(
        self, thread: ThreadMetadata, context: ChatContext
    ) -> AsyncIterator[ThreadStreamEvent]:
        config = context.widget.widget_config.agent
        try:
            endpoint = self._endpoint(context)
        except Conflict as exc:  # no key to answer with
            if not await demo_model.serves(self.store.sessionmaker, self.settings, context):
                raise CustomStreamError("This chat is not set up to answer yet.") from exc
            async for event in demo_model.answer(thread):
                yield event
            return
        client = self.models.client(endpoint)
        history = await self.store.load_thread_items(
            thread.id, None, agent.HISTORY_ITEMS, "desc", context
        )
        converter = agent.Converter(self.attachment_store, context)
        model_input = await converter.history(history.data, self.store.refused)
        agent_context: AgentContext[ChatContext] = AgentContext(
            thread=thread, store=self.store, request_context=context
        )
        vector_stores, http = await self._vector_stores(context), self._http_tools(context)
        mcp = await self._mcp_tools(context)
        first_token_out = asyncio.Event()
        run = Runner.run_streamed(
            handoffs.starting_agent(
                config,
                thread,
                lambda c: agent.agent(
                    c, client, context, first_token_out, vector_stores, http, mcp
                ),
            ),
            model_input,
            context=agent_context,
            run_config=RunConfig(tracing_disabled=True),
            max_turns=config.limits.max_turns,
        )
        run = agent.limited(run, config.limits, context.received_at)
        result = agent.hosted_tool_events(run, config, agent_context)
        first_token_ms = None
        ids: dict[str, str] = {}
        try:
            async for event in stream_agent_response(agent_context, result):
                owned = own_ids(event, ids)
                first = first_token_ms is None and _is_text(owned)
                if first:
                    first_token_ms = _ms_since(context.received_at)
                yield owned
                if first:
                    first_token_out.set()
                    self.store.release()
        except asyncio.CancelledError:
            result.cancel()
            raise
        except (agent.LimitExceeded, MaxTurnsExceeded) as exc:
            result.cancel()
            if isinstance(exc, MaxTurnsExceeded):
                exc = agent.LimitExceeded(
                    "max_turns",
                    f"This answer stopped: it needed more than {config.limits.max_turns} steps.",
                )
            self.store.report(
                context, "response.failed", thread_id=thread.id, error=f"limit: {exc.limit}"
            )
            yield NoticeEvent(level="warning", title="Answer stopped", message=exc.notice)
            return
        except Exception as exc:
            result.cancel()
            refused, missing = refused_in(exc), missing_store(exc, vector_stores)
            error = missing or (
                type(exc).__name__ if refused is None else f"outbound_refused: {refused}"
            )
            self.store.report(context, "response.failed", thread_id=thread.id, error=error[:1000])
            if refused is not None:
                raise CustomStreamError(
                    "This chat's model is at an address Kithost may not connect to."
                ) from exc
            if missing is not None:
                raise CustomStreamError(
                    "This chat cannot search its documents right now.", allow_retry=False
                ) from exc
            raise
        usage = result.context_wrapper.usage
        counted = usage.requests > 0 and usage.total_tokens > 0
        self.store.report(
            context,
            "response.finished",
            thread_id=thread.id,
            first_token_ms=first_token_ms,
            total_ms=_ms_since(context.received_at),
            input_tokens=usage.input_tokens if counted else None,
            output_tokens=usage.output_tokens if counted else None,
        )

    async def _check_message(
        self, thread: ThreadMetadata, message: UserMessageItem, context: ChatContext
    ) -> bool:
        """Whether ``message`` passes the guardrails; marked refused for the store
        (``SqlStore.refused``) unless it does, before the store writes a new message (see
        the module's docstring). A retried message is stored again when its mark changes."""
        refused = self.store.refused
        was_refused = message.id in refused
        refused.add(message.id)  # until it passes: a check that fails leaves it out too
        passed = not await self._tripped(thread.id, guardrails.message_texts(message), context)
        if passed:
            refused.discard(message.id)
        if not self.new_message and was_refused == passed:
            await self.store.save_item(thread.id, message, context)
        return passed

    async def _check_output(
        self, request: ThreadsAddClientToolOutputReq, context: ChatContext
    ) -> None:
        """Check a client tool's output before the SDK stores it; one a guardrail refuses is
        replaced by ``client_tools.REFUSED_OUTPUT`` and answered with the refusal
        (:meth:`respond`)."""
        params = request.params
        texts = guardrails.output_texts(params.result)
        if await self._tripped(params.thread_id, texts, context):
            self._output_refused = True
            params.result = dict(client_tools.REFUSED_OUTPUT)

    def _refusal(self, thread: ThreadMetadata, context: ChatContext) -> ThreadItemDoneEvent:
        """:func:`refusal`, marked for the store: the model never reads it (it answers what
        the model never reads either)."""
        event = refusal(thread, context)
        self.store.refused.add(event.item.id)
        return event

    async def _tripped(self, thread_id: str, texts: list[str], context: ChatContext) -> bool:
        """Whether a guardrail refuses what the visitor gives the model (``texts``: a
        message's, an action's, a client tool output's; reported when one does)."""

        async def moderation_client() -> AsyncOpenAI | None:
            try:
                endpoint = self._endpoint(context)
            except Conflict:  # no key: the demo model answers, nothing to moderate with
                return None
            return self.models.client(endpoint)

        try:
            tripped = await guardrails.check(guardrails_of(context), texts, moderation_client)
        except OpenAIError as exc:
            self.store.report(
                context, "response.failed", thread_id=thread_id, error=f"moderation: {exc}"[:1000]
            )
            raise CustomStreamError("This chat cannot check messages right now.") from exc
        if tripped is None:
            return False
        self.store.report(context, "guardrail.tripped", thread_id=thread_id, guardrail=tripped)
        return True

    async def _vector_stores(self, context: ChatContext) -> dict[uuid.UUID, str]:
        """The vector stores of the knowledge bases the agent's tools search (none: no query)."""
        tools = context.widget.widget_config.agent.tools
        wanted = {b for tool in tools if isinstance(tool, FileSearch) for b in tool.knowledge_bases}
        if not wanted:
            return {}
        async with session_scope(self.store.sessionmaker) as session:
            await rls.set_tenant(session, context.widget.tenant_id)
            return await knowledge.vector_stores(session, context.widget.tenant_id, wanted)

    def _http_tools(self, context: ChatContext) -> HttpToolRunner:
        secret = widget_tool_secret(self.box, context.widget.widget_tool_secret)
        limit = context.widget.widget_config.agent.limits.max_tool_calls
        return HttpToolRunner(secret, self.settings.outbound_policy, self.resolver, limit)

    async def _mcp_tools(self, context: ChatContext) -> list[Tool]:
        connector = McpConnector(self.settings.outbound_policy, self.resolver)
        mcp = answer_connections(self.store.sessionmaker, self.box, connector, context.widget)
        if mcp is None:
            return []
        self._mcp.append(mcp)
        return await mcp.open()

    def _endpoint(self, context: ChatContext) -> ModelEndpoint:
        """The agent's endpoint and key (from the config cache, as the widget); 409
        ``openai_key_missing`` when there is no key to use."""
        published = context.widget
        base_url = published.widget_config.agent.base_url
        return model_endpoint(
            self.settings,
            self.box,
            None if base_url is None else str(base_url),
            widget_key=published.widget_model_key,
            widget_key_base_url=published.widget_model_key_base_url,
            tenant_key=published.tenant_openai_key,
        )


def guardrails_of(context: ChatContext) -> Guardrails:
    return context.widget.widget_config.agent.guardrails


def refusal_of(context: ChatContext) -> str:
    return guardrails_of(context).refusal_message


def refusal(thread: ThreadMetadata, context: ChatContext) -> ThreadItemDoneEvent:
    """The widget's refusal message, answered when a guardrail trips."""
    return ThreadItemDoneEvent(
        item=AssistantMessageItem(
            id=new_id("message"),
            thread_id=thread.id,
            created_at=datetime.now(),
            content=[AssistantMessageContent(text=refusal_of(context))],
        )
    )


def own_ids(event: ThreadStreamEvent, ids: dict[str, str]) -> ThreadStreamEvent:
    """The event with assistant messages (and client tool calls) under Kithost's ids instead
    of the model's.

    Model ids are not ours to trust: Chat Completions streams give every message the same
    placeholder id, and any OpenAI-compatible server may repeat ids. ``ids`` maps the
    model's id of each message in progress to its own.
    """
    if isinstance(event, ThreadItemAddedEvent | ThreadItemDoneEvent) and isinstance(
        event.item, AssistantMessageItem | ClientToolCallItem
    ):
        model_id = event.item.id
        own = ids.get(model_id) or ids.setdefault(model_id, new_id("message"))
        if isinstance(event, ThreadItemDoneEvent):
            del ids[model_id]  # a later message may come with the same model id
        return event.model_copy(update={"item": event.item.model_copy(update={"id": own})})
    if isinstance(event, ThreadItemUpdatedEvent) and event.item_id in ids:
        event.item_id = ids[event.item_id]  # one per streamed delta, made for this response
    return event


def title_of(message: UserMessageItem) -> str | None:
    """The thread's title from its first message: its words, invisible characters left out
    (a visitor must not reorder or hide what staff read in the list), cut at a word."""
    text = " ".join(
        part.text for part in message.content if isinstance(part, UserMessageTextContent)
    )
    text = " ".join(word for word in map(without_invisible, text.split()) if word)
    if len(text) <= TITLE_LENGTH:
        return text or None
    return text[:TITLE_LENGTH].rsplit(" ", 1)[0] + "…"


def _is_text(event: ThreadStreamEvent) -> bool:
    return isinstance(event, ThreadItemUpdatedEvent) and isinstance(
        event.update, AssistantMessageContentPartTextDelta
    )


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
