"""A widget's configuration: what a draft holds and a published version freezes.

Everything a visitor's chat depends on is here (and so versioned): the ChatKit options,
how the chat is placed and launched, which backend answers and how, and the mapping of
ChatKit widget actions. :meth:`WidgetConfig.public` is the part the loader may see.
"""

from __future__ import annotations

import json
import re
import string
import uuid
from enum import StrEnum
from typing import Annotated, Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from kithost.errors import FieldError, InvalidInput
from kithost.kit.schemas import Schema
from kithost.models import Placement, WidgetMode
from kithost.widgets.chatkit_schema import chatkit_errors

HexColor = Annotated[str, StringConstraints(pattern=r"^#(?:[0-9a-fA-F]{3}){1,2}$")]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]


class LauncherPosition(StrEnum):
    bottom_right = "bottom-right"
    bottom_left = "bottom-left"


class Launcher(Schema):
    """The button that opens a framed chat (ignored by inline placements)."""

    position: LauncherPosition = LauncherPosition.bottom_right
    label: ShortText = "Chat with us"
    icon: Annotated[str, StringConstraints(pattern=r"^(lucide:)?[a-z0-9-]{1,40}$")] = "sparkle"
    background: HexColor = "#111827"
    foreground: HexColor = "#ffffff"
    open_on_load: bool = False
    prefetch: bool = False
    """Load the chat when the page is idle instead of on first open."""


class ModelApi(StrEnum):
    responses = "responses"
    chat_completions = "chat_completions"


class ReasoningEffort(StrEnum):
    """How much a reasoning model (gpt-5, the o-series) thinks before it answers."""

    minimal = "minimal"
    low = "low"
    medium = "medium"
    high = "high"


ToolId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


class FileSearch(Schema):
    """Search the tenant's knowledge bases (their OpenAI vector stores); the Responses API
    only. Bases with no document indexed yet are left out of the search."""

    type: Literal["file_search"]
    id: ToolId
    label: ShortText = "Searching the knowledge base…"
    """What the visitor sees while it runs."""
    knowledge_bases: Annotated[list[uuid.UUID], Field(min_length=1, max_length=10)]
    max_results: Annotated[int, Field(ge=1, le=50)] = 5


Domain = Annotated[
    str,
    StringConstraints(
        max_length=253, pattern=r"^([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
    ),
]


class WebSearch(Schema):
    """OpenAI's web search (the Responses API only), limited to ``allowed_domains`` when
    given. The visitor's location is never sent."""

    type: Literal["web_search"]
    id: ToolId
    label: ShortText = "Searching the web…"
    """What the visitor sees while it runs."""
    allowed_domains: Annotated[list[Domain], Field(max_length=20)] = []


ToolName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
MAX_SCHEMA_BYTES = 16_384
"""The largest JSON Schema of a function tool's arguments, encoded."""
MAX_SCHEMA_DEPTH = 32
"""How deep a function tool's arguments schema may nest (objects and lists): deeper is no
schema a model is given, and checking it ran out of stack at a depth that varies with the
caller's (a 500, then a 422 or a 400 by chance)."""


def _depth(value: Any) -> int:
    """How deep ``value``'s objects and lists nest (past ``MAX_SCHEMA_DEPTH``: one more),
    measured without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending and deepest <= MAX_SCHEMA_DEPTH:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            pending.extend(
                (v, depth + 1) for v in (item.values() if isinstance(item, dict) else item)
            )
    return deepest


def _arguments_schema(schema: dict[str, Any]) -> dict[str, Any]:
    if _depth(schema) > MAX_SCHEMA_DEPTH:
        raise ValueError(f"nested at most {MAX_SCHEMA_DEPTH} deep (objects and lists)")
    try:
        encoded = json.dumps(schema, allow_nan=False)
    except ValueError:
        raise ValueError("JSON has no NaN or Infinity") from None
    if len(encoded) > MAX_SCHEMA_BYTES:
        raise ValueError(f"at most {MAX_SCHEMA_BYTES} bytes as JSON")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"not a JSON Schema: {exc.message}") from None
    if schema.get("type") != "object":
        raise ValueError('the arguments are an object: "type": "object"')
    return schema


ArgumentsSchema = Annotated[dict[str, Any], AfterValidator(_arguments_schema)]
"""The JSON Schema of a function tool's arguments (an object)."""


class HttpMethod(StrEnum):
    post = "POST"
    put = "PUT"
    patch = "PATCH"


class HttpTool(Schema):
    """A tenant's endpoint as a function tool: the model calls ``name`` with arguments
    matching ``parameters``; Kithost sends them (JSON, signed with the widget's tool secret:
    ``chat.http_tool``) and hands the endpoint's JSON answer back to the model."""

    type: Literal["http"]
    id: ToolId
    label: ShortText = "Working on it…"
    """What the visitor sees while it runs."""
    name: ToolName
    """The function's name as the model sees it, unique among the agent's tools."""
    description: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    parameters: ArgumentsSchema = {"type": "object", "properties": {}}
    """The JSON Schema of the arguments (an object)."""
    url: AnyHttpUrl
    """HTTPS, at a public address (plain HTTP only where ``KITHOST_OUTBOUND_ALLOW`` opens)."""
    method: HttpMethod = HttpMethod.post
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10
    max_response_bytes: Annotated[int, Field(ge=1, le=1_048_576)] = 65_536


class ClientTool(Schema):
    """A function the host page implements: the model's call becomes ChatKit's client tool
    call, which the loader hands to the page's handler (``kithost('on', 'tool:NAME', fn)``);
    its answer goes back to the model (``chat.client_tools``). No handler, a failing one or
    no answer within ``timeout_seconds`` is an error the model sees."""

    type: Literal["client"]
    id: ToolId
    label: ShortText = "Working on it…"
    """What the visitor sees while it runs."""
    name: ToolName
    """The function's name as the model sees it (and the page's handler: ``tool:NAME``),
    unique among the agent's tools."""
    description: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    parameters: ArgumentsSchema = {"type": "object", "properties": {}}
    """The JSON Schema of the arguments (an object)."""
    timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 10
    """How long the page's handler may take."""


HeaderName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")]
RESERVED_HEADERS = frozenset(
    {
        "accept",
        "connection",
        "content-length",
        "content-type",
        "host",
        "mcp-protocol-version",
        "mcp-session-id",
        "transfer-encoding",
    }
)
"""Headers the MCP transport sets itself: never the one carrying a secret."""


class McpTool(Schema):
    """A remote MCP server (Streamable HTTP) whose ``allowed_tools`` the model may call,
    connected to by Kithost itself (``mcp_tools.client``). Its secret, if the server needs one, is
    sent as ``secret_header`` and set apart: ``PUT …/widgets/{id}/mcp-secrets/{tool_id}``."""

    type: Literal["mcp"]
    id: ToolId
    label: ShortText = "Working on it…"
    """What the visitor sees while one of its tools runs."""
    url: AnyHttpUrl
    """HTTPS, at a public address (plain HTTP only where ``KITHOST_OUTBOUND_ALLOW`` opens)."""
    allowed_tools: Annotated[list[ToolName], Field(min_length=1, max_length=64)]
    """The server's tools the model is offered, by name: no others, whatever the server has."""
    secret_header: HeaderName = "Authorization"  # noqa: S105 (a header name)
    """The header the secret goes in (its whole value, e.g. ``Bearer …``)."""
    timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10

    @field_validator("allowed_tools")
    @classmethod
    def _unique(cls, names: list[str]) -> list[str]:
        if len(set(names)) != len(names):
            raise ValueError("each tool is named once")
        return names

    @field_validator("secret_header")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name.lower() in RESERVED_HEADERS:
            raise ValueError(f"{name} is set by the MCP transport itself")
        return name


Tool = Annotated[
    FileSearch | WebSearch | HttpTool | ClientTool | McpTool, Field(discriminator="type")
]


Topic = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=100)]


class Guardrails(Schema):
    """Checks of what the visitor gives the model (a message, a widget action, a client
    tool's output: ``chat.guardrails``) before the model sees it; a tripped one answers
    with ``refusal_message`` (stored with the thread, reported as
    ``server.guardrail.tripped``) and the model is never called."""

    max_input_length: Annotated[int, Field(ge=1, le=100_000)] | None = None
    """The most characters a message's text may have."""
    refused_topics: Annotated[list[Topic], Field(max_length=50)] = []
    """Words or phrases a message may not contain: a case-insensitive match of the text as
    written (no stemming, no synonyms: "refund" matches "Refunds" but not "money back")."""
    moderation: bool = False
    """Check the message with OpenAI's moderation endpoint (with the key the agent uses;
    not for an agent with its own ``base_url``) and refuse what it flags."""
    refusal_message: Annotated[str, StringConstraints(min_length=1, max_length=1000)] = (
        "Sorry, I can't help with that here."
    )


class ResponseLimits(Schema):
    """What one answer may take; beyond it the answer ends with a notice saying which."""

    max_turns: Annotated[int, Field(ge=1, le=50)] = 10
    """Model calls in one answer (each tool result goes back to the model in a new turn)."""
    max_tool_calls: Annotated[int, Field(ge=0, le=100)] | None = None
    """Tool calls of any kind in one answer."""
    max_seconds: Annotated[int, Field(ge=1, le=600)] | None = None
    """The whole answer, from the visitor's message to its last word."""


HandoffId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
MAX_HANDOFFS = 8


class HandoffAgent(Schema):
    """A further agent the main agent may hand the conversation to (the model calls
    ``transfer_to_<id>``); it answers with the main agent's endpoint (``base_url``,
    ``model_api``, key) and guardrails, and its own instructions, model settings and tools
    (``chat.handoffs``)."""

    id: HandoffId
    """Unique among the handoffs; ``main`` is the main agent's."""
    name: ShortText
    """What the visitor sees: "Transferred to <name>"."""
    description: Annotated[str, StringConstraints(max_length=1024)] = ""
    """When the main agent should hand over (the model reads it)."""
    instructions: Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
    model: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    """The main agent's model when empty."""
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    max_output_tokens: Annotated[int, Field(ge=1, le=128_000)] | None = None
    reasoning_effort: ReasoningEffort | None = None
    """For a reasoning model only (not the main agent's: its model may be another)."""
    tools: Annotated[list[ToolId], Field(max_length=16)] = []
    """Ids of ``agent.tools`` this agent may use."""
    hand_back: bool = True
    """May hand the conversation back to the main agent (``transfer_to_main``)."""


class Agent(Schema):
    """How Kithost answers for a self-hosted widget."""

    name: ShortText = "Assistant"
    """The main agent's name as the visitor sees it when a handoff agent hands back."""

    model: Annotated[str, StringConstraints(min_length=1, max_length=100)] = "gpt-4.1-mini"
    instructions: Annotated[str, StringConstraints(max_length=20_000)] = (
        "You are a helpful assistant."
    )
    base_url: AnyHttpUrl | None = None
    """Any OpenAI-compatible API (a self-hosted model, a gateway); OpenAI's when empty."""
    model_api: ModelApi = ModelApi.responses
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    max_output_tokens: Annotated[int, Field(ge=1, le=128_000)] | None = None
    reasoning_effort: ReasoningEffort | None = None
    """For reasoning models only (gpt-5, the o-series; others refuse it): empty leaves the
    model's default."""
    messages_per_user_per_day: Annotated[int, Field(ge=1, le=100_000)] | None = None
    """Per-end-user quota; beyond it the chat shows a notice instead of answering."""
    tools: Annotated[list[Tool], Field(max_length=16)] = []
    """What the agent may use while answering, each with an id unique in the widget."""
    guardrails: Guardrails = Guardrails()
    limits: ResponseLimits = ResponseLimits()
    handoffs: Annotated[list[HandoffAgent], Field(max_length=MAX_HANDOFFS)] = []
    """Agents the main agent may hand the conversation to; a thread's later turns go on with
    the agent that answered last."""
    main_tools: Annotated[list[ToolId], Field(max_length=16)] | None = None
    """Ids of ``tools`` the main agent itself uses (all of them when null)."""


class FileUpload(Schema):
    enabled: bool = False
    max_file_size: Annotated[int, Field(ge=1, le=512)] | None = None
    """Megabytes."""
    max_files: Annotated[int, Field(ge=1, le=100)] | None = None


class History(Schema):
    enabled: bool = True
    recent_threads: Annotated[int, Field(ge=1, le=1000)] | None = None


class Titling(Schema):
    enabled: bool = True


class HostedChatKitConfiguration(Schema):
    """OpenAI's ``chatkit_configuration`` for hosted sessions."""

    automatic_thread_titling: Titling | None = None
    file_upload: FileUpload | None = None
    history: History | None = None


StateVariable = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]


class Hosted(Schema):
    """An OpenAI Agent Builder workflow (until OpenAI's shutdown on 2026-11-30)."""

    workflow_id: Annotated[str, StringConstraints(pattern=r"^wf_[A-Za-z0-9_-]{1,200}$")]
    version: Annotated[str, StringConstraints(min_length=1, max_length=40)] | None = None
    state_variables: Annotated[list[StateVariable], Field(max_length=32)] = []
    """The page-context keys the loader may pass as workflow state variables."""
    chatkit_configuration: HostedChatKitConfiguration = HostedChatKitConfiguration()
    expires_after_seconds: Annotated[int, Field(ge=60, le=3600)] = 600
    max_requests_per_minute: Annotated[int, Field(ge=1, le=1000)] | None = None


_TEMPLATE_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _check_template(template: str) -> str:
    """A template fills ``{field}`` from the action payload; nothing else may be formatted."""
    for _, field, spec, conversion in string.Formatter().parse(template):
        if field is not None and (not _TEMPLATE_FIELD.match(field) or spec or conversion):
            raise ValueError("placeholders are {name} with a payload field name")
    return template


_FIXED_ORIGIN = re.compile(
    r"^https?://(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*\.?|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?(?:[/?#]|$)",
    re.IGNORECASE,
)
"""A URL template's scheme, host and port, all written out: the authority ends before the
path, query or fragment, so no placeholder (nor ``@``, ``\\``) can extend or replace the host
(``https://a{host}`` is refused)."""


class OpenUrl(Schema):
    kind: Literal["open_url"]
    url: Annotated[str, StringConstraints(max_length=2000)]
    """A template, e.g. ``https://shop.example.com/orders/{order_id}``."""

    @field_validator("url")
    @classmethod
    def _http_only(cls, url: str) -> str:
        _check_template(url)
        if not _FIXED_ORIGIN.match(url):
            raise ValueError("must start with http:// or https:// and a fixed host")
        return url


class SendMessage(Schema):
    kind: Literal["send_message"]
    text: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    """A template: the message sent for the visitor."""

    @field_validator("text")
    @classmethod
    def _template(cls, text: str) -> str:
        return _check_template(text)


class Forward(Schema):
    """Hand the action to Kithost's ChatKit server (``sendCustomAction``)."""

    kind: Literal["forward"]


class Ignore(Schema):
    kind: Literal["ignore"]


WidgetAction = Annotated[OpenUrl | SendMessage | Forward | Ignore, Field(discriminator="kind")]
ActionType = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:/-]{1,100}$")]


class WidgetConfig(Schema):
    """The whole versioned configuration of a widget."""

    mode: WidgetMode = WidgetMode.self_hosted
    placement: Placement = Placement.framed
    chatkit: dict[str, Any] = {}
    """ChatKit options that are data, validated against ``@openai/chatkit``'s types."""
    launcher: Launcher = Launcher()
    agent: Agent = Agent()
    hosted: Hosted | None = None
    actions: Annotated[dict[ActionType, WidgetAction], Field(max_length=100)] = {}
    require_identity: bool = False
    """Refuse anonymous visitors: sessions need an identity token from the tenant's backend."""

    @model_validator(mode="after")
    def _hosted_needs_workflow(self) -> WidgetConfig:
        if self.mode is WidgetMode.hosted and self.hosted is None:
            raise ValueError("a hosted widget needs hosted.workflow_id")
        return self

    def public(self) -> dict[str, Any]:
        """What the loader and the framed page may see: never the agent or workflow, only
        the names of its ``client`` tools (what the page implements) with their timeouts."""
        public = self.model_dump(mode="json", include=PUBLIC_FIELDS)
        public["client_tools"] = {
            tool.name: tool.timeout_seconds
            for tool in self.agent.tools
            if isinstance(tool, ClientTool)
        }
        return public


PUBLIC_FIELDS = {"mode", "placement", "chatkit", "launcher", "actions", "require_identity"}


def parse_config(data: Any, field: str = "config") -> WidgetConfig:
    """The one way to accept a configuration: pydantic's rules, then ChatKit's schema.

    :class:`InvalidInput` lists every problem, each named by its path under ``field``
    (``config.chatkit.theme.radius``) and the rule it breaks.
    """
    try:
        config = WidgetConfig.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(
            "The widget configuration is not valid.",
            errors=[
                FieldError(
                    field=".".join([field, *_json_path(data, e["loc"])]),
                    message=e["msg"],
                    type=e["type"],
                )
                for e in exc.errors()
            ],
        ) from exc
    errors = chatkit_errors(config.chatkit, f"{field}.chatkit")
    if errors:
        raise InvalidInput("The ChatKit options are not valid.", errors=errors)
    return config


def _json_path(data: Any, loc: tuple[int | str, ...]) -> list[str]:
    """Pydantic's location of an error as a path in ``data``: without the tag it inserts
    for a tagged union (``actions.open.open_url.url`` is ``actions.open.url``)."""
    path, node = [], data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part not in node and i < len(loc) - 1:
            continue
        path.append(str(part))
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return path
