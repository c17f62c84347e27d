"""Reading the Agents SDK code Agent Builder exports, without running it.

The code is parsed with :mod:`ast` and only read: literals are taken with
``ast.literal_eval`` (which evaluates nothing else), names are followed to the module-level
assignments they stand for, and anything else (a call, an f-string, control flow) is
reported, never executed. What Kithost's agent can carry becomes a draft ``agent``; the rest
is listed with its line and what to do instead.

The shape read (Agent Builder's Python export): module-level tools (``FileSearchTool``,
``WebSearchTool``, ``HostedMCPTool``, ``@function_tool`` functions), ``Agent(...)``
assignments (name, instructions, model, ``ModelSettings``, tools, handoffs), and an
``async def run_workflow`` whose ``state = {...}`` keys are the workflow's state variables
and whose ``Runner.run(<agent>, …)`` calls say which agent answers first.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

MAX_SOURCE_BYTES = 256 * 1024
MAX_NODES = 50_000
"""Larger exports are refused before they are walked."""
CONTROL_FLOW = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.Try, ast.Match)


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
    state_variables: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


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
        if workflow is not None:
            self._workflow(workflow, first, agents, imported)
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

    def _agent(self, variable: str) -> ImportedAgent:
        _, call = self.calls[variable]
        keywords = {k.arg: k.value for k in call.keywords if k.arg is not None}
        name = self._literal(keywords.get("name"), str) or variable
        imported = ImportedAgent(name=name, agent={})
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
            if value is not None:
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
            elif keyword.arg not in {None, "store"}:
                imported.skipped.append(
                    Skipped(
                        keyword.value.lineno,
                        f"model_settings.{keyword.arg}",
                        "Kithost's agent sets model, temperature and max_output_tokens only.",
                    )
                )

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
        elif isinstance(call, ast.Call) and callee == "WebSearchTool":
            keywords = {k.arg: k.value for k in call.keywords}
            filters = self._literal(keywords.get("filters"), dict) or {}
            domains = filters.get("allowed_domains") if isinstance(filters, dict) else None
            imported.web_search = {
                "allowed_domains": [d for d in domains or [] if isinstance(d, str)]
            }
        else:
            label = callee or (variable or "a tool")
            imported.skipped.append(
                Skipped(
                    node.lineno,
                    f"tool {label}",
                    "Not carried over: add it to the agent again once Kithost offers it "
                    "(MCP servers and HTTP tools are on the way).",
                )
            )

    def _workflow(
        self,
        workflow: ast.FunctionDef | ast.AsyncFunctionDef,
        first: str,
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
            if other != first:
                imported.skipped.append(
                    Skipped(
                        self.calls[other][1].lineno,
                        f"agent {other}",
                        "Only the first agent is carried over: fold its instructions in, or wait "
                        "for handoffs.",
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
