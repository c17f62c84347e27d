"""Reading the Agents SDK code Agent Builder exports, without running it.

The code is parsed with :mod:`ast` and only read: literals are taken with
``ast.literal_eval`` (which evaluates nothing else), names are followed to the module-level
assignments they stand for, and anything else (a call, an f-string, control flow) is
reported, never executed. What Kithost's agent can carry becomes a draft ``agent``; the rest
is listed with its line and what to do instead.

The shape read (Agent Builder's Python export): module-level tools (``FileSearchTool``,
``WebSearchTool``, ``HostedMCPTool``, ``@function_tool`` functions), ``Agent(...)``
assignments (name, instructions, model, ``ModelSettings``, tools, handoffs), the guardrails'
configuration (a module-level ``{"guardrails": [{"name", "config"}, …]}``, as
``run_and_apply_guardrails`` takes it), and an ``async def run_workflow`` whose
``state = {...}`` keys are the workflow's state variables and whose ``Runner.run(<agent>, …)``
calls say which agent answers first.

The first agent's handoffs (agents, or ``handoff(agent, …)``) become ``agent.handoffs``, each
using the widget's tools of the kinds it had; their own handoffs do not carry (a handoff
agent may only hand back). Guardrails map where Kithost has the same check (``Moderation``
→ ``moderation``, ``Keyword Filter`` → ``refused_topics``); the others are listed.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

from kithost.widgets.config import ReasoningEffort

MAX_SOURCE_BYTES = 256 * 1024
MAX_NODES = 50_000
"""Larger exports are refused before they are walked."""
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
    vector_stores: list[str] = field(default_factory=list)
    """The OpenAI vector stores its file search used: adopted as a knowledge base."""
    web_search: dict[str, Any] | None = None
    mcp: list[dict[str, Any]] = field(default_factory=list)
    """Its hosted MCP servers as ``mcp`` tools (their secrets left for the tenant to set)."""
    tool_kinds: list[str] = field(default_factory=list)
    """The kinds of the widget's tools this agent uses (``file_search``, ``web_search``; an
    ``mcp`` tool by its id)."""
    handoffs: list[ImportedAgent] = field(default_factory=list)
    state_variables: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def team(self, tool_ids: dict[str, str]) -> dict[str, Any]:
        """The agent's ``handoffs`` and ``main_tools``, given the id of the widget's tool of
        each kind (none without handoffs)."""
        if not self.handoffs:
            return {}

        def ids(agent: ImportedAgent) -> list[str]:
            return [tool_ids[kind] for kind in agent.tool_kinds if kind in tool_ids]

        members = [{**member.agent, "tools": ids(member)} for member in self.handoffs]
        return {"handoffs": members, "main_tools": ids(self)}


def read_export(source: str) -> ImportedAgent:
    """The export's first-answering agent as Kithost's, with what it could not carry."""
    if len(source.encode()) > MAX_SOURCE_BYTES:
        raise ImportRefused("export_too_large", f"An export has at most {MAX_SOURCE_BYTES} bytes.")
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
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ImportRefused("export_too_complex", "The code is too large to read.")
    return _Reader(tree).read()


class _Reader:
    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.assigned: dict[str, ast.expr] = {}
        self.calls: dict[str, tuple[str, ast.Call]] = {}
        """Module-level ``name = Callee(...)``: callee's name and the call."""
        self.function_tools: dict[str, int] = {}

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
        workflow = next(
            (
                s
                for s in self.tree.body
                if isinstance(s, ast.AsyncFunctionDef | ast.FunctionDef)
                and s.name == "run_workflow"
            ),
            None,
        )
        first = self._first_run(workflow) or agents[0]
        imported = self._agent(first)
        members = self._handoffs(first, imported)
        self._guardrails(imported)
        if workflow is not None:
            self._workflow(workflow, [first, *members], agents, imported)
        return imported

    def _first_run(self, workflow: ast.FunctionDef | ast.AsyncFunctionDef | None) -> str | None:
        if workflow is None:
            return None
        for node in ast.walk(workflow):
            if isinstance(node, ast.Call) and _dotted(node.func) == "Runner.run" and node.args:
                runs = _name(node.args[0])
                if runs is not None and runs in self.calls:
                    return runs
        return None

    def _agent(self, variable: str, *, main: bool = True) -> ImportedAgent:
        """The agent assigned to ``variable``; its handoffs are read by :meth:`_handoffs`
        when it is the ``main`` one (and listed as not carried otherwise)."""
        _, call = self.calls[variable]
        keywords = {k.arg: k.value for k in call.keywords if k.arg is not None}
        name = self._literal(keywords.get("name"), str) or variable
        imported = ImportedAgent(name=name, agent={"name": _short(name) or variable[:80]})
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
                imported.agent["instructions"] = text[:20_000]
        model = self._literal(keywords.get("model"), str)
        if model is not None:
            imported.agent["model"] = model[:100]
        self._model_settings(keywords.get("model_settings"), imported)
        tools = keywords.get("tools")
        for tool in tools.elts if isinstance(tools, ast.List) else []:
            self._tool(tool, imported)
        for key in ("handoffs", "input_guardrails", "output_guardrails", "output_type"):
            value = keywords.get(key)
            if value is not None and not (key == "handoffs" and main):
                imported.skipped.append(
                    Skipped(
                        value.lineno,
                        f"{name}: {key}",
                        "Not carried over yet: describe that work in the instructions.",
                    )
                )
        return imported

    def _model_settings(self, node: ast.expr | None, imported: ImportedAgent) -> None:
        node = self._resolved(node)
        if not isinstance(node, ast.Call) or _callee(node) != "ModelSettings":
            return
        for keyword in node.keywords:
            if keyword.arg == "temperature":
                value = self._literal(keyword.value, float | int)
                if value is not None and 0 <= value <= 2:
                    imported.agent["temperature"] = float(value)
            elif keyword.arg == "max_tokens":
                value = self._literal(keyword.value, int)
                if value is not None and 1 <= value <= 128_000:
                    imported.agent["max_output_tokens"] = value
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
            keywords = {k.arg: k.value for k in call.keywords}
            stores = self._literal(keywords.get("vector_store_ids"), list) or []
            imported.vector_stores.extend(s for s in stores if isinstance(s, str))
            imported.tool_kinds.append("file_search")
        elif isinstance(call, ast.Call) and callee == "WebSearchTool":
            keywords = {k.arg: k.value for k in call.keywords}
            filters = self._literal(keywords.get("filters"), dict) or {}
            domains = filters.get("allowed_domains") if isinstance(filters, dict) else None
            imported.web_search = {
                "allowed_domains": [d for d in domains or [] if isinstance(d, str)]
            }
            imported.tool_kinds.append("web_search")
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
        if not names:
            instead = "Name the tools the agent may call in the mcp tool's allowed_tools."
            imported.skipped.append(Skipped(call.lineno, f"{where}: every tool", instead))
            return
        slug = re.sub(r"[^a-z0-9_-]+", "-", str(label or "mcp").lower()).strip("-_")[:40]
        tool_id = slug if slug and slug not in {"knowledge", "web"} else f"mcp-{len(imported.mcp)}"
        if all(tool["id"] != tool_id for tool in imported.mcp):
            imported.mcp.append({"type": "mcp", "id": tool_id, "url": url, "allowed_tools": names})
        imported.tool_kinds.append(tool_id)
        instead = f"If the server needs a secret, set it: PUT …/mcp-secrets/{tool_id}."
        imported.skipped.append(Skipped(call.lineno, f"{where}: its secret", instead))

    def _workflow(
        self,
        workflow: ast.FunctionDef | ast.AsyncFunctionDef,
        carried: list[str],
        agents: list[str],
        imported: ImportedAgent,
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

    def _handoffs(self, first: str, imported: ImportedAgent) -> list[str]:
        """The first agent's handoffs as ``imported.handoffs``; their variables."""
        keywords = {k.arg: k.value for k in self.calls[first][1].keywords if k.arg is not None}
        given = self._resolved(keywords.get("handoffs"))
        members: list[str] = []
        for node in given.elts if isinstance(given, ast.List) else []:
            call = node if isinstance(node, ast.Call) and _callee(node) == "handoff" else None
            target = _name(call.args[0]) if call is not None and call.args else None
            variable = target if call is not None else _name(node)
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
            described = self._described(call, self.calls[variable][1])
            member.agent = {
                "id": self._member_id(member.name, variable, imported),
                "description": described,
                "instructions": "You are a helpful assistant.",
                **member.agent,
            }
            names = {a.agent["name"].casefold() for a in [imported, *imported.handoffs]}
            if member.agent["name"].casefold() in names:  # names tell agents apart
                member.agent["name"] = _short(f"{member.agent['name'][:60]} ({variable})")
            imported.handoffs.append(member)
            imported.vector_stores.extend(
                s for s in member.vector_stores if s not in imported.vector_stores
            )
            imported.web_search = imported.web_search or member.web_search
            known = {tool["id"] for tool in imported.mcp}
            imported.mcp.extend(tool for tool in member.mcp if tool["id"] not in known)
            imported.skipped.extend(member.skipped)
            members.append(variable)
        return members

    def _described(self, handoff: ast.Call | None, agent: ast.Call) -> str:
        """When to hand over: ``tool_description_override`` or the agent's
        ``handoff_description``."""
        keywords = {k.arg: k.value for k in (handoff.keywords if handoff else []) if k.arg}
        own = {k.arg: k.value for k in agent.keywords if k.arg is not None}
        text = self._literal(keywords.get("tool_description_override"), str) or self._literal(
            own.get("handoff_description"), str
        )
        return (text or "")[:1024]

    @staticmethod
    def _member_id(name: str, variable: str, imported: ImportedAgent) -> str:
        """The agent's name as the SDK makes a handoff's function name of it
        (``transfer_to_billing``), unique among the handoffs."""
        taken = {"main"} | {m.agent["id"] for m in imported.handoffs}
        for candidate in (name, variable):
            snake = re.sub(r"[^a-z0-9]+", "_", candidate.lower()).strip("_")[:40]
            if snake and snake not in taken:
                return snake
        return f"agent_{len(imported.handoffs) + 1}"

    def _guardrails(self, imported: ImportedAgent) -> None:
        """The guardrails' configuration (``{"guardrails": [{"name", "config"}]}``) as
        ``agent.guardrails`` where Kithost has the same check; the rest listed."""
        carried: dict[str, Any] = {}
        for value in self.assigned.values():
            if not isinstance(value, ast.Dict):
                continue
            entries = next(
                (
                    v
                    for k, v in zip(value.keys, value.values, strict=True)
                    if isinstance(k, ast.Constant) and k.value == "guardrails"
                ),
                None,
            )
            for entry in entries.elts if isinstance(entries, ast.List) else []:
                guardrail = self._literal(entry, dict) or {}
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
            known = carried.setdefault("refused_topics", [])
            known.extend(t for t in topics if t not in known)
            if len(known) > MAX_TOPICS:
                del known[MAX_TOPICS:]
                imported.skipped.append(
                    Skipped(line, "keywords", f"Kithost refuses at most {MAX_TOPICS} topics.")
                )
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
        try:
            value = ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None
        return value if isinstance(value, kind) and not isinstance(value, bool) else None


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
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None
