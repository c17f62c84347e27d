"""Reading the Agents SDK code Agent Builder exports, without running it.

The code is parsed with :mod:`ast` and only read: literals are taken with
``ast.literal_eval`` (which evaluates nothing else), names are followed to the module-level
assignments they stand for, and anything else (a call, an f-string, control flow) is
reported, never executed. What Kithost's agent can carry becomes a draft ``agent``; the rest
is listed with its line and what to do instead.

The shape read (Agent Builder's Python export): module-level tools (``FileSearchTool``,
``WebSearchTool``, ``HostedMCPTool``, ``@function_tool`` functions), ``Agent(...)``
assignments (name, instructions, model, ``ModelSettings``, tools, handoffs), the guardrails'
configuration (a ``{"guardrails": [{"name", "config"}, …]}`` at module level or in
``run_workflow``, as ``run_and_apply_guardrails`` takes it), and an ``async def run_workflow`` whose
``state = {...}`` keys are the workflow's state variables and whose ``Runner.run(<agent>, …)``
calls say which agent answers first.

The first agent's handoffs (agents, or ``handoff(agent, …)``, at most
:data:`~kithost.widgets.config.MAX_HANDOFFS`) become ``agent.handoffs``, each using the
widget's tools it had; their own handoffs do not carry (a handoff agent may only hand back).
The file searches become the widget's one ``file_search`` tool (``knowledge``), each of their
vector stores a knowledge base of its own, used by each agent that searched (agents
searching different stores are listed: each searches all of them); each distinct MCP server
(URL and tools) is an ``mcp`` tool of its own, its URL without the credentials it may hold
(the tenant sets the server's secret); a server at an address Kithost may not connect to
(``kit.outbound``'s policy, as saving the tool checks) is listed with why, not the whole
import refused. A web search keeps its domain limit: one that cannot be read leaves the web
search out rather than widen it to the whole web, and the widget's one web search is limited
as the first met (the first agent's): an agent searching with another limit is listed without
it. Names and domains that Kithost's configuration cannot hold are listed, not carried.
Guardrails map where Kithost has the same check (``Moderation`` → ``moderation``, ``Keyword
Filter`` → ``refused_topics``); the others are listed.

Nothing is dropped unsaid: an argument not read (a positional one, ``**``, any but those
above), a value computed in code or out of Kithost's range, and instructions beyond what an
agent keeps are listed. The agent that answers first is the one the workflow runs
(``Runner.run``, ``run_streamed`` or ``run_sync``: the first argument or ``starting_agent``),
else the first that no other hands off to. A file search with ``filters`` is left out (it
would search documents the export kept out), and an MCP server that asked for approval
carries with a note that Kithost calls its tools unasked.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import AnyHttpUrl, TypeAdapter, ValidationError

from kithost.kit.schemas import NUL_MESSAGE
from kithost.kit.surrogates import without_lone_surrogates
from kithost.kit.visible import has_invisible
from kithost.widgets.config import MAX_HANDOFFS, Domain, ReasoningEffort, ToolName

MAX_SOURCE_BYTES = 256 * 1024
MAX_NODES = 50_000
"""Larger exports are refused before they are walked."""
MAX_BRACES = 10_000
"""Braces an export may hold, counted before it is parsed: Python 3.11's parser reads an
f-string in time quadratic in its fields (80,000 took seconds of the event loop)."""
MAX_LITERAL_NODES = MAX_NODES
"""Nodes of literals read in all, a value read again (a list of ids named by many tools)
counting again: beyond, reading would cost more than the export's size says."""
MAX_AGENTS = 100
"""Module-level ``Agent(...)`` assignments an export may have."""
MAX_TOOLS = 16
"""Distinct tools an export may carry, as ``agent.tools`` holds."""
MAX_VECTOR_STORES = 10
"""Vector stores adopted from one export; the others are listed."""
VECTOR_STORE_ID = re.compile(r"vs_[A-Za-z0-9_-]{1,125}")
"""An OpenAI vector store's id, as ``knowledge_bases.vector_store_id`` holds it."""
RUNS = {"Runner.run", "Runner.run_streamed", "Runner.run_sync"}
"""How a workflow runs its first agent (``starting_agent``, the first argument)."""
CONTROL_FLOW = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.Try, ast.Match)
GUARDRAILS_NOT_CARRIED = {
    "Contains PII": "Kithost has no PII check: tell the agent in its instructions not to ask "
    "for or repeat personal data.",
    "Jailbreak": "Kithost has no jailbreak classifier: keep moderation on and state the "
    "agent's limits in its instructions.",
    "Prompt Injection Detection": "Kithost has no prompt-injection check: keep tools' answers "
    "to data, and the agent's limits in its instructions.",
    "Off Topic Prompts": "List the topics to refuse in agent.guardrails.refused_topics, or say "
    "in the instructions what the agent answers.",
}
"""What to do instead of each guardrail Kithost does not have (others: the generic note)."""
MAX_TOPICS = 50
MAX_DOMAINS = 20
"""Allowed domains of a ``web_search`` tool (``config.WebSearch``)."""
MAX_MCP_TOOLS = 64
"""Allowed tools of an ``mcp`` tool (``config.McpTool``)."""
AGENT_READ = {"name", "instructions", "model", "model_settings", "tools", "handoff_description"}
"""``Agent(...)`` arguments read (``handoffs`` too, the first agent's); the others are listed."""
MAX_INSTRUCTIONS = 20_000
"""Characters of an agent's instructions (``config.Agent``)."""
MAX_OUTPUT_TOKENS = 128_000
MAX_DESCRIPTION = 1024
"""Characters of a handoff's description (``config.HandoffAgent``)."""
FILTERS = {"WebSearchToolFilters", "Filters"}
"""The Agents SDK's type of a web search's ``filters`` (``openai``'s ``Filters``)."""
_DOMAIN: TypeAdapter[str] = TypeAdapter(Domain)
_TOOL_NAME: TypeAdapter[str] = TypeAdapter(ToolName)
_URL: TypeAdapter[AnyHttpUrl] = TypeAdapter(AnyHttpUrl)
BOM = "\ufeff"
Refusal = Callable[[str], str | None]
"""Why Kithost may not connect to a URL (None: it may), as ``kit.outbound`` says."""


class ImportRefused(ValueError):
    """The code cannot be read at all: ``code`` (stable) and where."""

    def __init__(self, code: str, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.line = code, message, line


@dataclass(frozen=True)
class Skipped:
    line: int
    what: str
    instead: str


@dataclass
class ImportedAgent:
    """Kithost's agent as far as the export carries over, and what it does not."""

    name: str
    agent: dict[str, Any]
    """Fields of the widget's ``agent`` (``tools`` without ids of knowledge bases yet)."""
    vector_stores: dict[str, int] = field(default_factory=dict)
    """The vector stores its file searches use (the first agent's: every carried agent's),
    each with the line it was first met on: a knowledge base each."""
    web_search: dict[str, Any] | None = None
    mcp: list[dict[str, Any]] = field(default_factory=list)
    """Its hosted MCP servers as ``mcp`` tools (their secrets left for the tenant to set)."""
    tool_kinds: list[str] = field(default_factory=list)
    """The ids of the widget's tools this agent uses (``knowledge``, ``web``, an ``mcp``
    tool's)."""
    handoffs: list[ImportedAgent] = field(default_factory=list)
    state_variables: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def team(self, tool_ids: set[str]) -> dict[str, Any]:
        """The agent's ``handoffs`` and ``main_tools``, given the ids of the widget's tools
        that carried over (none without handoffs)."""
        if not self.handoffs:
            return {}

        def ids(agent: ImportedAgent) -> list[str]:
            return [kind for kind in dict.fromkeys(agent.tool_kinds) if kind in tool_ids]

        members = [{**member.agent, "tools": ids(member)} for member in self.handoffs]
        return {"handoffs": members, "main_tools": ids(self)}


def read_export(
    source: str, refusal: Refusal = lambda url: None, taken: Collection[str] = ()
) -> ImportedAgent:
    """The export's first-answering agent as Kithost's, with what it could not carry; an MCP
    server at a URL ``refusal`` refuses is listed with why. ``taken``: ids of tools the
    widget keeps, which no imported tool gets."""
    if len(source.encode()) > MAX_SOURCE_BYTES:
        raise ImportRefused("export_too_large", f"An export has at most {MAX_SOURCE_BYTES} bytes.")
    if source.count("{") > MAX_BRACES:
        raise ImportRefused("export_too_complex", f"The code has more than {MAX_BRACES} braces.")
    # A file saved with a byte order mark, as Python reads it; an encoding a file declares
    # (PEP 263) was the file's: this text is decoded already, and ``ast`` reads it so.
    source = source.removeprefix(BOM)
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        if "too many nested" in exc.msg or "too complex" in exc.msg:
            raise ImportRefused(
                "export_too_complex", "The code nests too deeply to read."
            ) from None
        raise ImportRefused("invalid_python", f"Not Python: {exc.msg}.", exc.lineno) from None
    except (RecursionError, MemoryError, ValueError):
        raise ImportRefused("export_too_complex", "The code nests too deeply to read.") from None
    for count, node in enumerate(ast.walk(tree), 1):
        if count > MAX_NODES:
            raise ImportRefused("export_too_complex", "The code is too large to read.")
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if "\x00" in node.value:
                raise ImportRefused("nul_character", f"A string: {NUL_MESSAGE}.", node.lineno)
            node.value = without_lone_surrogates(node.value)  # as a request's own text
    return _Reader(tree, refusal, taken).read()


class _Reader:
    def __init__(self, tree: ast.Module, refusal: Refusal, taken: Collection[str]) -> None:
        self.tree, self.refusal = tree, refusal
        self.assigned: dict[str, ast.expr] = {}
        self.calls: dict[str, tuple[str, ast.Call]] = {}
        """Module-level ``name = Callee(...)``: callee's name and the call."""
        self.function_tools: dict[str, int] = {}
        self.tool_ids: set[str] = {"knowledge", "web", *taken}
        """Of the tools met so far (``knowledge``: the file search's, ``web``: the web
        search's) and those the widget keeps."""
        self.searches: dict[tuple[str, ...], int] = {}
        """Each set of vector stores a file search names: its line."""
        self.servers: dict[tuple[str, tuple[str, ...]], str] = {}
        """Each MCP server met (URL, allowed tools): its tool's id."""
        self.stores: dict[str, int] = {}
        self.web_search: dict[str, list[str]] | None = None
        """The first web search carried: the widget's one."""
        self.sizes: dict[int, int] = {}
        """The number of nodes of each literal read (by the node's id)."""
        self.literal_nodes = 0

    def read(self) -> ImportedAgent:
        for statement in self.tree.body:
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                target = statement.targets[0]
                if isinstance(target, ast.Name):
                    self.assigned[target.id] = statement.value
                    callee = _callee(statement.value)
                    if callee is not None and isinstance(statement.value, ast.Call):
                        self.calls[target.id] = (callee, statement.value)
            elif isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef) and any(
                _callee(d) == "function_tool" or _name(d) == "function_tool"
                for d in statement.decorator_list
            ):
                self.function_tools[statement.name] = statement.lineno
        agents = [name for name, (callee, _) in self.calls.items() if callee == "Agent"]
        if not agents:
            raise ImportRefused("no_agent", "The code defines no Agent(...).")
        if len(agents) > MAX_AGENTS:
            line = self.calls[agents[MAX_AGENTS]][1].lineno
            raise ImportRefused(
                "too_many_agents", f"An export has at most {MAX_AGENTS} agents.", line
            )
        workflow = next(
            (
                s
                for s in self.tree.body
                if isinstance(s, ast.AsyncFunctionDef | ast.FunctionDef)
                and s.name == "run_workflow"
            ),
            None,
        )
        first = self._first_run(workflow) or self._root(agents)
        imported = self._agent(first)
        members = self._handoffs(first, imported)
        imported.vector_stores = self.stores
        if len(self.searches) > 1:
            imported.skipped.append(
                Skipped(
                    sorted(self.searches.values())[1],
                    "file searches on different vector stores",
                    "A widget has one file search: each agent that searches searches every "
                    "imported store; say in its instructions what it looks for.",
                )
            )
        self._guardrails(imported)
        if workflow is not None:
            self._workflow(workflow, imported)
        carried = {first, *members}
        for other in agents:
            if other not in carried:
                imported.skipped.append(
                    Skipped(
                        self.calls[other][1].lineno,
                        f"agent {other}",
                        "Only the first agent and those it hands off to carry over: fold its "
                        "instructions in, or add it to agent.handoffs.",
                    )
                )
        imported.skipped = list(dict.fromkeys(imported.skipped))  # a value read twice: once
        return imported

    def _first_run(self, workflow: ast.FunctionDef | ast.AsyncFunctionDef | None) -> str | None:
        if workflow is None:
            return None
        for node in ast.walk(workflow):
            if isinstance(node, ast.Call) and _dotted(node.func) in RUNS:
                starting = {k.arg: k.value for k in node.keywords}.get("starting_agent")
                given = node.args[0] if node.args else starting
                runs = None if given is None else _name(given)
                if runs is not None and runs in self.calls:
                    return runs
        return None

    def _root(self, agents: list[str]) -> str:
        """The agent that answers first when no run names it: the first that no other agent
        hands off to (an export defines the agents handed to before the one handing off)."""
        targets: set[str | None] = set()
        walked: set[int] = set()  # a list many agents name is walked once
        for variable in agents:
            keywords = {k.arg: k.value for k in self.calls[variable][1].keywords}
            given = self._resolved(keywords.get("handoffs"))
            if isinstance(given, ast.List | ast.Tuple) and id(given) not in walked:
                walked.add(id(given))
                targets.update(self._handoff_target(node)[1] for node in given.elts)
        return next((agent for agent in agents if agent not in targets), agents[0])

    def _agent(self, variable: str, *, main: bool = True) -> ImportedAgent:
        """The agent assigned to ``variable``; its handoffs are read by :meth:`_handoffs`
        when it is the ``main`` one (and listed as not carried otherwise)."""
        _, call = self.calls[variable]
        keywords = {k.arg: k.value for k in call.keywords if k.arg is not None}
        name = self._literal(keywords.get("name"), str) or variable
        unseen = has_invisible(name)  # control, bidi or invisible: no name shown to visitors
        if unseen:
            name = variable
        imported = ImportedAgent(name=name, agent={"name": _short(name) or variable[:80]})
        if unseen:
            instead = "A name visitors read holds no control, bidi or invisible character."
            imported.skipped.append(Skipped(call.lineno, f"{variable}: its name", instead))
        instructions = keywords.get("instructions")
        if instructions is not None:
            text = self._literal(instructions, str)
            if text is None:
                imported.skipped.append(
                    Skipped(
                        instructions.lineno,
                        "instructions computed in code",
                        "Write the instructions as text in agent.instructions.",
                    )
                )
            else:
                imported.agent["instructions"] = text[:MAX_INSTRUCTIONS]
                if len(text) > MAX_INSTRUCTIONS:
                    instead = f"Kithost keeps the first {MAX_INSTRUCTIONS}: shorten them."
                    imported.skipped.append(
                        Skipped(instructions.lineno, f"{name}: the instructions' end", instead)
                    )
        model = keywords.get("model")
        if model is not None:
            text = self._literal(model, str)
            if text is None or not 1 <= len(text) <= 100:
                instead = "Set the model by name (at most 100 characters) in agent.model."
                imported.skipped.append(Skipped(model.lineno, f"{name}: model", instead))
            else:
                imported.agent["model"] = text
        self._model_settings(keywords.get("model_settings"), imported)
        tools = keywords.get("tools")
        for tool in self._entries(tools, f"{name}: tools", imported):
            self._tool(tool, imported)
        for argument in call.args:
            instead = "Kithost reads an Agent's arguments by name only: name=, instructions=…"
            imported.skipped.append(Skipped(argument.lineno, f"{name}: an argument", instead))
        for keyword in call.keywords:
            if keyword.arg in AGENT_READ or (keyword.arg == "handoffs" and main):
                continue
            imported.skipped.append(
                Skipped(
                    keyword.value.lineno,
                    f"{name}: {keyword.arg or '**' + (_name(keyword.value) or '…')}",
                    "Not carried over yet: describe that work in the instructions.",
                )
            )
        return imported

    def _entries(self, node: ast.expr | None, what: str, imported: ImportedAgent) -> list[ast.expr]:
        """The entries of a list (or tuple) ``node`` stands for; one Kithost cannot read
        (computed in code) is listed as ``what``."""
        given = self._resolved(node)
        if given is None or _is_none(given):
            return []
        if isinstance(given, ast.List | ast.Tuple):
            return given.elts
        instead = "Write the list out: [a, b, …], each entry an Agent or tool of the export."
        imported.skipped.append(Skipped(given.lineno, f"{what} computed in code", instead))
        return []

    def _model_settings(self, given: ast.expr | None, imported: ImportedAgent) -> None:
        node = self._resolved(given)
        if node is None or _is_none(node):
            return
        if not isinstance(node, ast.Call) or _callee(node) != "ModelSettings":
            instead = "Set temperature, max_output_tokens and reasoning_effort in agent."
            imported.skipped.append(
                Skipped(node.lineno, "model_settings computed in code", instead)
            )
            return
        for keyword in node.keywords:
            if keyword.arg == "temperature":
                value = self._literal(keyword.value, float | int)
                if value is not None and 0 <= value <= 2:
                    imported.agent["temperature"] = float(value)
                elif not _is_none(keyword.value):
                    instead = "Set agent.temperature, a number from 0 to 2."
                    imported.skipped.append(
                        Skipped(keyword.value.lineno, "model_settings.temperature", instead)
                    )
            elif keyword.arg == "max_tokens":
                value = self._literal(keyword.value, int)
                if value is not None and 1 <= value <= MAX_OUTPUT_TOKENS:
                    imported.agent["max_output_tokens"] = value
                elif not _is_none(keyword.value):
                    instead = f"Set agent.max_output_tokens, from 1 to {MAX_OUTPUT_TOKENS}."
                    imported.skipped.append(
                        Skipped(keyword.value.lineno, "model_settings.max_tokens", instead)
                    )
            elif keyword.arg == "reasoning":
                self._reasoning(keyword.value, imported)
            elif keyword.arg not in {None, "store"}:
                imported.skipped.append(
                    Skipped(
                        keyword.value.lineno,
                        f"model_settings.{keyword.arg}",
                        "Kithost's agent sets model, temperature and max_output_tokens only.",
                    )
                )

    def _reasoning(self, node: ast.expr, imported: ImportedAgent) -> None:
        """``Reasoning(effort=…)``: the effort carries over; a summary Kithost does not show."""
        call = self._resolved(node)
        keywords = {k.arg: k.value for k in call.keywords} if isinstance(call, ast.Call) else {}
        effort = self._literal(keywords.get("effort"), str)
        if effort in {e.value for e in ReasoningEffort}:
            imported.agent["reasoning_effort"] = effort
            left = sorted(f"model_settings.reasoning.{k}" for k in keywords if k != "effort")
        else:
            left = ["model_settings.reasoning"]
        instead = "Kithost's agent sets the reasoning effort only (agent.reasoning_effort)."
        imported.skipped.extend(Skipped(node.lineno, what, instead) for what in left)

    def _tool(self, node: ast.expr, imported: ImportedAgent) -> None:
        variable = _name(node)
        if variable is not None and variable in self.function_tools:
            imported.skipped.append(
                Skipped(
                    self.function_tools[variable],
                    f"function tool {variable}",
                    "Kithost cannot run your Python: serve it as an HTTP endpoint the agent calls.",
                )
            )
            return
        call = self._resolved(node)
        callee = _callee(call) if isinstance(call, ast.Call) else None
        if isinstance(call, ast.Call) and callee == "FileSearchTool":
            self._file_search(call, imported)
        elif isinstance(call, ast.Call) and callee == "WebSearchTool":
            self._web_search(call, imported)
        elif isinstance(call, ast.Call) and callee == "HostedMCPTool":
            self._mcp(call, imported)
        else:
            label = callee or (variable or "a tool")
            imported.skipped.append(
                Skipped(
                    node.lineno,
                    f"tool {label}",
                    "Not carried over: add it to agent.tools as an http tool (your endpoint) or "
                    "a client tool (a function of your page).",
                )
            )

    def _file_search(self, call: ast.Call, imported: ImportedAgent) -> None:
        """A ``FileSearchTool``: its vector stores for the widget's file search; ids that are
        no vector store's, and stores beyond :data:`MAX_VECTOR_STORES`, listed."""
        keywords = {k.arg: k.value for k in call.keywords}
        filters = keywords.get("filters")
        if filters is not None and not _is_none(filters):
            instead = (
                "Kithost searches every document of a knowledge base: upload the documents "
                "the filter kept to a knowledge base of their own."
            )  # carried without it, the agent would search documents the export kept out
            imported.skipped.append(Skipped(call.lineno, "file search with filters", instead))
            return
        given = self._literal(keywords.get("vector_store_ids"), list) or []
        stores: list[str] = []
        for store in given:
            if not isinstance(store, str) or not VECTOR_STORE_ID.fullmatch(store):
                instead = "Name an OpenAI vector store by its id (vs_…)."
                imported.skipped.append(
                    Skipped(call.lineno, f"vector store {store!r:.80}", instead)
                )
            elif store in self.stores or len(self.stores) < MAX_VECTOR_STORES:
                self.stores.setdefault(store, call.lineno)
                stores.append(store)
            else:
                instead = (
                    f"Kithost adopts at most {MAX_VECTOR_STORES} vector stores from one export: "
                    "upload its documents to a knowledge base."
                )
                imported.skipped.append(Skipped(call.lineno, f"vector store {store}", instead))
        if stores:
            self.searches.setdefault(tuple(sorted(set(stores))), call.lineno)
            imported.tool_kinds.append("knowledge")

    def _web_search(self, call: ast.Call, imported: ImportedAgent) -> None:
        """A ``WebSearchTool``, limited to its ``filters``' allowed domains (a dict, or the
        SDK's ``WebSearchToolFilters(allowed_domains=…)``). A limit that cannot be read, or
        whose domains none carries over, leaves the web search out: carried without it, the
        agent would search the whole web where the export searched a few sites."""
        keywords = {k.arg: k.value for k in call.keywords if k.arg is not None}
        node = self._resolved(keywords.get("filters"))
        given: Any
        if node is None or _is_none(node):
            given = []
        elif isinstance(node, ast.Call) and _callee(node) in FILTERS and not node.args:
            limits = {k.arg: k.value for k in node.keywords if k.arg is not None}
            domains_given = limits.get("allowed_domains")
            unlimited = domains_given is None or _is_none(domains_given)
            given = [] if unlimited else self._literal(domains_given, list)
        else:
            filters = self._literal(node, dict)
            given = None if filters is None else filters.get("allowed_domains") or []
        left_out = "Add a web_search tool to agent.tools with the domains it may search."
        if not isinstance(given, list):
            imported.skipped.append(
                Skipped(call.lineno, "web search: domains Kithost cannot read", left_out)
            )
            return
        domains: list[str] = []
        for entry in given:
            domain = _domain(entry)
            if domain is not None and domain in domains:
                continue
            if domain is None or len(domains) >= MAX_DOMAINS:
                instead = (
                    f"A web search is limited to at most {MAX_DOMAINS} domains, each a host "
                    "name such as help.example.com."
                )
                imported.skipped.append(
                    Skipped(call.lineno, f"web search domain {entry!r:.80}", instead)
                )
            else:
                domains.append(domain)
        if given and not domains:
            imported.skipped.append(Skipped(call.lineno, "web search", left_out))
            return
        search = {"allowed_domains": domains}
        self.web_search = self.web_search or search
        if set(domains) != set(self.web_search["allowed_domains"]):
            instead = (
                "A widget has one web search, limited as the first agent's: say in this "
                "agent's instructions which sites it may use, or add them to that search."
            )  # never the other's limit, wider or elsewhere
            imported.skipped.append(Skipped(call.lineno, "a web search limited otherwise", instead))
            return
        imported.web_search = self.web_search
        imported.tool_kinds.append("web")

    def _tool_id(self, wanted: str) -> str:
        """``wanted``, or ``wanted-2``, ``-3``…: an id no tool met has yet; at most
        :data:`MAX_TOOLS` of them."""
        if len(self.tool_ids) > MAX_TOOLS:  # "web" is always among them
            raise ImportRefused("too_many_tools", f"Kithost's agent has at most {MAX_TOOLS} tools.")
        candidate, number = wanted, 1
        while candidate in self.tool_ids:
            number += 1
            candidate = f"{wanted[:40]}-{number}"
        self.tool_ids.add(candidate)
        return candidate

    def _mcp(self, call: ast.Call, imported: ImportedAgent) -> None:
        """A ``HostedMCPTool``'s remote server as an ``mcp`` tool Kithost connects to: its
        URL and allowed tools; a header secret is never in the export (the tenant sets it)."""
        keywords = {k.arg: k.value for k in call.keywords if k.arg is not None}
        config = self._literal(keywords.get("tool_config"), dict) or {}
        url, label = config.get("server_url"), config.get("server_label")
        allowed = config.get("allowed_tools")
        if isinstance(allowed, dict):  # {"tool_names": [...]}, the Responses API's filter
            allowed = allowed.get("tool_names")
        names = [n for n in allowed if isinstance(n, str)] if isinstance(allowed, list) else []
        where = f"MCP server {label}" if isinstance(label, str) else "an MCP server"
        if not isinstance(url, str):
            instead = "OpenAI's connectors run only on OpenAI: add the service's own MCP server."
            imported.skipped.append(Skipped(call.lineno, where, instead))
            return
        server_url, credentials = _server_url(url)
        try:
            url = str(_URL.validate_python(server_url))
        except ValidationError:
            instead = "Add the server to agent.tools as an mcp tool with its http(s) URL."
            imported.skipped.append(Skipped(call.lineno, f"{where}: its URL", instead))
            return
        refused = self.refusal(url)
        if refused is not None:  # as saving the tool would be: not the rest of the import
            instead = (
                f"Kithost may not connect to this address ({refused}): serve the server at "
                "a public https:// address and add it to agent.tools as an mcp tool."
            )
            imported.skipped.append(Skipped(call.lineno, f"{where}: its URL", instead))
            return
        names = self._tool_names(names, where, call.lineno, imported)
        if not names:
            instead = "Name the tools the agent may call in the mcp tool's allowed_tools."
            imported.skipped.append(Skipped(call.lineno, f"{where}: every tool", instead))
            return
        server = (url, tuple(names))
        tool_id = self.servers.get(server)
        if tool_id is None:
            slug = re.sub(r"[^a-z0-9_-]+", "-", str(label or "").lower()).strip("-_")[:40]
            tool_id = self.servers[server] = self._tool_id(slug or "mcp")
            imported.mcp.append({"type": "mcp", "id": tool_id, "url": url, "allowed_tools": names})
        imported.tool_kinds.append(tool_id)
        if config.get("require_approval", "never") != "never":
            instead = (
                "Kithost calls the server's tools without asking anyone: allow only tools "
                f"safe to call unasked in the mcp tool {tool_id}'s allowed_tools."
            )
            imported.skipped.append(Skipped(call.lineno, f"{where}: require_approval", instead))
        instead = f"If the server needs a secret, set it: PUT …/mcp-secrets/{tool_id}."
        if credentials:  # never kept in the URL, where anyone reading the widget sees it
            instead = (
                "The credentials in its URL were left out: set the server's secret (its "
                f"Authorization header) with PUT …/mcp-secrets/{tool_id}."
            )
        imported.skipped.append(Skipped(call.lineno, f"{where}: its secret", instead))

    @staticmethod
    def _tool_names(names: list[str], where: str, line: int, imported: ImportedAgent) -> list[str]:
        """``names`` an ``mcp`` tool may allow: each once, well formed, at most
        :data:`MAX_MCP_TOOLS`; the others listed."""
        kept: list[str] = []
        for name in dict.fromkeys(names):
            try:
                _TOOL_NAME.validate_python(name)
            except ValidationError:
                instead = "A tool's name is 1-64 letters, digits, _ or -."
                imported.skipped.append(Skipped(line, f"{where}: tool {name!r:.80}", instead))
                continue
            if len(kept) >= MAX_MCP_TOOLS:
                instead = f"An mcp tool allows at most {MAX_MCP_TOOLS} of the server's tools."
                imported.skipped.append(Skipped(line, f"{where}: tool {name}", instead))
                continue
            kept.append(name)
        return kept

    def _workflow(
        self, workflow: ast.FunctionDef | ast.AsyncFunctionDef, imported: ImportedAgent
    ) -> None:
        for node in ast.walk(workflow):
            if (
                isinstance(node, ast.Assign)
                and any(_name(t) == "state" for t in node.targets)
                and isinstance(node.value, ast.Dict)
            ):
                imported.state_variables = [
                    k.value
                    for k in node.value.keys
                    if isinstance(k, ast.Constant) and isinstance(k.value, str)
                ]
            elif isinstance(node, ast.If) and any(
                isinstance(n, ast.Name) and "tripwire" in n.id for n in ast.walk(node.test)
            ):
                imported.skipped.append(
                    Skipped(
                        node.lineno,
                        "what run_workflow does when a guardrail trips",
                        "Kithost answers a message its guardrails refuse with "
                        "agent.guardrails.refusal_message: write that answer there.",
                    )
                )
            elif isinstance(node, CONTROL_FLOW):
                imported.skipped.append(
                    Skipped(
                        node.lineno,
                        f"{type(node).__name__.lower()} in run_workflow",
                        "Control flow between agents does not carry over: one agent answers; "
                        "put the decision in its instructions.",
                    )
                )

    def _handoffs(self, first: str, imported: ImportedAgent) -> list[str]:
        """The first agent's handoffs as ``imported.handoffs``; their variables. More than
        :data:`MAX_HANDOFFS` are refused before any is read."""
        keywords = {k.arg: k.value for k in self.calls[first][1].keywords if k.arg is not None}
        nodes = self._entries(keywords.get("handoffs"), f"{imported.name}: handoffs", imported)
        members: list[str] = []
        targets = {self._handoff_target(node)[1] for node in nodes}
        targets = {
            t for t in targets if t != first and self.calls.get(t or "", ("",))[0] == "Agent"
        }
        if len(targets) > MAX_HANDOFFS:
            raise ImportRefused(
                "too_many_handoffs",
                f"Kithost's agent hands off to at most {MAX_HANDOFFS} agents.",
                nodes[0].lineno,
            )
        ids, names = {"main"}, {imported.agent["name"].casefold()}
        for node in nodes:
            call, variable = self._handoff_target(node)
            if variable is None or self.calls.get(variable, ("",))[0] != "Agent":
                imported.skipped.append(
                    Skipped(
                        node.lineno,
                        "a handoff Kithost cannot follow",
                        "Hand off to an Agent(...) of the export, or add it to agent.handoffs.",
                    )
                )
                continue
            if variable == first or variable in members:
                continue
            member = self._agent(variable, main=False)
            member.agent = {
                "id": self._member_id(member.name, variable, ids, len(members)),
                "description": self._described(call, self.calls[variable][1], member),
                **member.agent,
                "instructions": member.agent.get("instructions") or "You are a helpful assistant.",
            }
            if member.agent["name"].casefold() in names:  # names tell agents apart
                member.agent["name"] = _short(f"{member.agent['name'][:60]} ({variable})")
            ids.add(member.agent["id"])
            names.add(member.agent["name"].casefold())
            imported.handoffs.append(member)
            imported.web_search = imported.web_search or member.web_search
            imported.mcp.extend(member.mcp)
            imported.skipped.extend(member.skipped)
            members.append(variable)
        return members

    @staticmethod
    def _handoff_target(node: ast.expr) -> tuple[ast.Call | None, str | None]:
        """A handoff list's entry: the ``handoff(...)`` call (if it is one) and the variable
        of the agent it names."""
        call = node if isinstance(node, ast.Call) and _callee(node) == "handoff" else None
        if call is None:
            return None, _name(node)
        return call, _name(call.args[0]) if call.args else None

    def _described(self, handoff: ast.Call | None, agent: ast.Call, member: ImportedAgent) -> str:
        """When to hand over: ``tool_description_override`` or the agent's
        ``handoff_description`` (beyond what Kithost keeps: listed)."""
        keywords = {k.arg: k.value for k in (handoff.keywords if handoff else []) if k.arg}
        own = {k.arg: k.value for k in agent.keywords if k.arg is not None}
        for node in (keywords.get("tool_description_override"), own.get("handoff_description")):
            text: str | None = self._literal(node, str)
            if node is not None and text:
                if len(text) > MAX_DESCRIPTION:
                    instead = f"Kithost keeps the first {MAX_DESCRIPTION}: shorten it."
                    member.skipped.append(
                        Skipped(
                            node.lineno, f"{member.name}: the handoff description's end", instead
                        )
                    )
                return text[:MAX_DESCRIPTION]
        return ""

    @staticmethod
    def _member_id(name: str, variable: str, taken: set[str], carried: int) -> str:
        """The agent's name as the SDK makes a handoff's function name of it
        (``transfer_to_billing``), not one of the ``taken`` ids."""
        for candidate in (name, variable):
            snake = re.sub(r"[^a-z0-9]+", "_", candidate.lower()).strip("_")[:40]
            if snake and snake not in taken:
                return snake
        return next(f"agent_{n}" for n in itertools.count(carried + 1) if f"agent_{n}" not in taken)

    def _guardrails(self, imported: ImportedAgent) -> None:
        """The guardrails' configuration (``{"guardrails": [{"name", "config"}]}``) as
        ``agent.guardrails`` where Kithost has the same check; the rest listed."""
        carried: dict[str, Any] = {}
        for node in ast.walk(self.tree):  # at module level or in run_workflow
            entries = _key(node, "guardrails") if isinstance(node, ast.Dict) else None
            if entries is None:
                continue
            for entry in self._entries(entries, "guardrails", imported):
                guardrail = self._literal(entry, dict)
                if guardrail is None:  # its config computed: its name may still say what it is
                    name = _key(entry, "name") if isinstance(entry, ast.Dict) else None
                    guardrail = {"name": self._literal(name, str)}
                self._guardrail(guardrail, entry.lineno, carried, imported)
        if carried:
            imported.agent["guardrails"] = carried

    @staticmethod
    def _guardrail(
        guardrail: dict[str, Any], line: int, carried: dict[str, Any], imported: ImportedAgent
    ) -> None:
        name = str(guardrail.get("name"))
        given = guardrail.get("config")
        config: dict[str, Any] = given if isinstance(given, dict) else {}
        if name == "Moderation":
            carried["moderation"] = True
            if config.get("categories"):
                imported.skipped.append(
                    Skipped(
                        line,
                        "Moderation categories",
                        "Kithost's moderation refuses a message OpenAI flags in any category.",
                    )
                )
            return
        words = config.get("keywords")
        if name == "Keyword Filter" and isinstance(words, list):
            topics = [w.strip()[:100] for w in words if isinstance(w, str) and len(w.strip()) > 1]
            known: list[str] = carried.setdefault("refused_topics", [])
            for topic in dict.fromkeys(topics):  # known stays short: no quadratic reading
                if topic in known:
                    continue
                if len(known) >= MAX_TOPICS:
                    imported.skipped.append(
                        Skipped(line, "keywords", f"Kithost refuses at most {MAX_TOPICS} topics.")
                    )
                    break
                known.append(topic)
            return
        imported.skipped.append(
            Skipped(
                line,
                f"guardrail {name}",
                GUARDRAILS_NOT_CARRIED.get(
                    name,
                    "Kithost checks messages for length, refused topics and moderation only: "
                    "set those in agent.guardrails.",
                ),
            )
        )

    def _resolved(self, node: ast.expr | None) -> ast.expr | None:
        """``node``, or what a module-level name stands for."""
        seen = 0
        while isinstance(node, ast.Name) and node.id in self.assigned and seen < 8:
            node, seen = self.assigned[node.id], seen + 1
        return node

    def _literal(self, node: ast.expr | None, kind: Any) -> Any:
        node = self._resolved(node)
        if node is None:
            return None
        size = self.sizes.setdefault(id(node), sum(1 for _ in ast.walk(node)))
        self.literal_nodes += size
        if self.literal_nodes > MAX_LITERAL_NODES:
            raise ImportRefused(
                "export_too_complex",
                "The code names the same values too often to read.",
                node.lineno,
            )
        try:
            value = ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None
        return value if isinstance(value, kind) and not isinstance(value, bool) else None


def _key(node: ast.Dict, key: str) -> ast.expr | None:
    """The value of ``key`` in a dict display."""
    pairs = zip(node.keys, node.values, strict=True)
    return next((v for k, v in pairs if isinstance(k, ast.Constant) and k.value == key), None)


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _domain(entry: object) -> str | None:
    """``entry`` as a web search's allowed domain (``Help.Example.com``, a URL of it, a
    trailing dot: ``help.example.com``); None when it is none."""
    if not isinstance(entry, str):
        return None
    text = entry.strip().lower()
    if "://" in text:
        text = urlsplit(text).hostname or ""
    text = text.rstrip(".")
    try:
        return _DOMAIN.validate_python(text)
    except ValidationError:
        return None


def _server_url(url: str) -> tuple[str | None, bool]:
    """An MCP server's ``url`` as Kithost keeps it (http or https, no credentials) and
    whether it held credentials; None when it is no such URL."""
    try:
        parts = urlsplit(url.strip())
        hostname, port = parts.hostname, parts.port
    except ValueError:
        return None, False
    if parts.scheme not in {"http", "https"} or not hostname:
        return None, False
    if parts.username is None and parts.password is None:
        return url.strip(), False
    host = f"[{hostname}]" if ":" in hostname else hostname
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit(parts._replace(netloc=netloc)), True


def _short(text: str) -> str:
    """``text`` as a display name (``ShortText``): one line, at most 80 characters."""
    return " ".join(text.split())[:80].strip()


def _name(node: ast.expr) -> str | None:
    return node.id if isinstance(node, ast.Name) else None


def _callee(node: ast.expr) -> str | None:
    if not isinstance(node, ast.Call):
        return None
    dotted = _dotted(node.func)
    return None if dotted is None else dotted.rsplit(".", 1)[-1]


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a chain of attributes on a name (read in a loop: a chain may be as
    long as the export)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))
