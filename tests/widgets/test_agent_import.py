"""Importing Agent Builder's exported code as a widget's agent: read with ``ast`` and never
run; what carries over lands in the draft (the file search's vector stores adopted as a
knowledge base), the rest is listed with its line; a dry run changes nothing; hostile or
broken code is a clear 422 and runs nothing. Fixtures (``exports/``) follow the shape of
Agent Builder's Python export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import KnowledgeBase
from tests.widgets.helpers import Acme, audit_entries, create, export, url

GUARDRAIL = """
a = Agent(name="A")
config = {{"guardrails": [{{"name": {name}, "config": {{}}}}]}}
"""
WORKFLOW = """
a = Agent(name="A")
async def run_workflow(workflow_input):
    state = {state}
    return await Runner.run(a, input=[])
"""
MCP = """
crm = HostedMCPTool(tool_config={{"type": "mcp", "server_label": {label},
                                 "server_url": "https://mcp.acme.example/mcp",
                                 "allowed_tools": ["find_order"]}})
a = Agent(name="A", tools=[crm])
"""


async def import_into(
    client: httpx2.AsyncClient, acme: Acme, code: str, *, dry_run: bool = False
) -> tuple[str, httpx2.Response]:
    widget = url(await create(client, acme))
    params = {"dry_run": "true"} if dry_run else {}
    response = await client.post(
        widget + "/agent-import",
        json={"code": code},
        params=params,
        headers=acme.matching('"1"'),
    )
    return widget, response


async def test_a_single_agent_becomes_the_drafts_agent(
    client: httpx2.AsyncClient, acme: Acme, db: AsyncSession
) -> None:
    widget, response = await import_into(client, acme, export("single_agent"))
    assert response.status_code == 200, response.text
    answer = response.json()
    agent = answer["config"]["agent"]
    assert agent["instructions"] == "You help Acme's customers with their orders. Be brief."
    assert (agent["model"], agent["temperature"], agent["max_output_tokens"]) == (
        "gpt-4.1-mini",
        0.3,
        800,
    )
    assert agent["tools"] == []
    assert answer["not_carried"] == []
    draft = (await client.get(widget, headers=acme.headers)).json()["config"]
    assert draft["agent"] == agent
    assert [e.action for e in await audit_entries(db, acme.tenant, "widget.agent_imported")] == [
        "widget.agent_imported"
    ]


async def test_a_triage_workflow_carries_its_tools_and_lists_the_rest(
    client: httpx2.AsyncClient, acme: Acme, db: AsyncSession
) -> None:
    _, response = await import_into(client, acme, export("triage"))
    assert response.status_code == 200, response.text
    answer = response.json()
    agent = answer["config"]["agent"]
    assert agent["instructions"].startswith("You route the customer")
    assert agent["model"] == "gpt-5"
    [web, crm] = agent["tools"]  # its vector store: no key of the tenant's own to check it
    assert web == {
        "type": "web_search",
        "id": "web",
        "label": "Searching the web…",
        "allowed_domains": ["help.acme.example"],
    }
    bases = await db.scalars(select(KnowledgeBase).where(KnowledgeBase.tenant_id == acme.tenant.id))
    assert bases.all() == []
    assert answer["state_variables"] == ["customer_tier", "page"]
    assert crm == {
        "type": "mcp",
        "id": "crm",
        "label": "Working on it…",
        "url": "https://mcp.acme.example/mcp",
        "allowed_tools": ["find_order"],
        "secret_header": "Authorization",
        "timeout_seconds": 10.0,
    }
    skipped = {s["what"]: s for s in answer["not_carried"]}
    assert "mcp-secrets/crm" in skipped["MCP server crm: its secret"]["instead"]
    assert "function tool refund" in skipped
    assert "own OpenAI API key" in skipped["vector store vs_68f7ee2546808191a3a18e1c"]["instead"]
    [billing] = agent["handoffs"]
    assert (billing["id"], billing["name"], billing["model"]) == ("billing", "Billing", "gpt-4.1")
    assert billing["instructions"] == "You answer billing questions."
    assert (billing["tools"], agent["main_tools"]) == ([], ["web", "crm"])
    assert "Triage: handoffs" not in skipped
    assert "agent billing" not in skipped
    assert agent["guardrails"]["moderation"] is True
    assert "Moderation categories" in skipped
    assert "if in run_workflow" in skipped
    assert agent["reasoning_effort"] == "low"
    assert "model_settings.reasoning.summary" in skipped
    lines = export("triage").splitlines()
    assert lines[skipped["if in run_workflow"]["line"] - 1].strip().startswith("if state")
    assert all(s["instead"] for s in answer["not_carried"])


async def test_an_mcp_server_without_allowed_tools_or_url_is_listed_not_carried(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    code = """
from agents import Agent, HostedMCPTool

everything = HostedMCPTool(tool_config={"type": "mcp", "server_label": "crm",
                                        "server_url": "https://mcp.acme.example/mcp"})
drive = HostedMCPTool(tool_config={"type": "mcp", "server_label": "drive",
                                   "connector_id": "connector_googledrive"})
agent = Agent(name="Helper", instructions="Help.", tools=[everything, drive])
"""
    _, response = await import_into(client, acme, code)
    assert response.status_code == 200, response.text
    assert response.json()["config"]["agent"]["tools"] == []
    skipped = {s["what"]: s["instead"] for s in response.json()["not_carried"]}
    assert "allowed_tools" in skipped["MCP server crm: every tool"]
    assert "connectors" in skipped["MCP server drive"]


async def test_a_dry_run_changes_nothing(
    client: httpx2.AsyncClient, acme: Acme, db: AsyncSession
) -> None:
    widget, response = await import_into(client, acme, export("triage"), dry_run=True)
    assert response.status_code == 200, response.text
    assert response.json()["dry_run"] is True
    assert response.json()["config"]["agent"]["model"] == "gpt-5"
    shown = (await client.get(widget, headers=acme.headers)).json()
    assert (shown["revision"], shown["config"]["agent"]["model"]) == (1, "gpt-4.1-mini")
    bases = await db.scalars(select(KnowledgeBase).where(KnowledgeBase.tenant_id == acme.tenant.id))
    assert bases.all() == []


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("agent = Agent(name='x'", 422, "invalid_python"),
        ("x = " + "(" * 5000 + ")" * 5000, 422, "export_too_complex"),
        ("x = [" + "1," * 60_000 + "]", 422, "export_too_complex"),
        ("x = " + "-" * 100_000 + "1", 422, "export_too_complex"),
        ("print('hello')", 422, "no_agent"),
        ("a = Agent(name='A')\n" + "#" * (257 * 1024), 422, "string_too_long"),
        ("x = Agent()\nb = x" + ".a" * 1200 + "()\n", 200, None),
        ("a = Agent(name='A\\x00')", 422, "nul_character"),
        ("a = Agent(tools=[FileSearchTool(vector_store_ids=['vs_\\x00'])])", 422, "nul_character"),
        (GUARDRAIL.format(name="'Jail\\x00break'"), 422, "nul_character"),
        (WORKFLOW.format(state="{'tier\\x00': 1}"), 422, "nul_character"),
        (MCP.format(label="'crm\\x00'"), 422, "nul_character"),
        ("\n".join(f"a{n} = Agent()" for n in range(101)), 422, "too_many_agents"),
        (
            "".join(f"a{n} = Agent()\n" for n in range(9))
            + f"m = Agent(handoffs=[{', '.join(f'a{n}' for n in range(9))}])\n"
            + WORKFLOW.format(state="{}").replace("Runner.run(a,", "Runner.run(m,"),
            422,
            "too_many_handoffs",
        ),
    ],
)
async def test_code_it_cannot_read_is_refused_clearly(
    client: httpx2.AsyncClient,
    acme: Acme,
    db: AsyncSession,
    code: str,
    status: int,
    error: str | None,
) -> None:
    widget, response = await import_into(client, acme, code)
    assert response.status_code == status, response.text
    if error is not None:
        body: dict[str, Any] = response.json()
        assert response.headers["content-type"] == "application/problem+json"
        assert [(e["field"], e["type"]) for e in body["errors"]] == [("code", error)]
        assert (await client.get(widget, headers=acme.headers)).json()["revision"] == 1
    bases = await db.scalars(select(KnowledgeBase).where(KnowledgeBase.tenant_id == acme.tenant.id))
    assert bases.all() == []


async def test_ids_no_vector_store_has_are_listed_not_stored(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    long = "vs_" + "a" * 200
    code = f"a = Agent(tools=[FileSearchTool(vector_store_ids=[{long!r}, 'x', 3])])"
    _, response = await import_into(client, acme, code)
    assert response.status_code == 200, response.text
    assert response.json()["config"]["agent"]["tools"] == []
    listed = [s["what"] for s in response.json()["not_carried"]]
    assert listed == [f"vector store {long!r:.80}", "vector store 'x'", "vector store 3"]


async def test_mcp_servers_of_one_label_in_two_cases_stay_two_tools(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    code = "\n".join(
        [
            MCP.format(label="'crm'").replace("mcp.acme", "one.acme"),
            MCP.format(label="'CRM'")
            .replace("crm = ", "crm2 = ")
            .replace("find_order", "find_customer")
            .replace("[crm]", "[crm, crm2]"),
        ]
    )
    _, response = await import_into(client, acme, code)
    assert response.status_code == 200, response.text
    tools = response.json()["config"]["agent"]["tools"]
    assert [(t["id"], t["url"]) for t in tools] == [
        ("crm", "https://one.acme.example/mcp"),
        ("crm-2", "https://mcp.acme.example/mcp"),
    ]
    secrets = [s["instead"] for s in response.json()["not_carried"]]
    assert ["mcp-secrets/crm." in s for s in secrets] == [True, False]
    assert ["mcp-secrets/crm-2." in s for s in secrets] == [False, True]


async def test_harmful_code_is_read_and_never_run(
    client: httpx2.AsyncClient, acme: Acme, tmp_path: Path
) -> None:
    code = export("harmful").replace("__file__", repr(str(tmp_path / "export")))
    _, response = await import_into(client, acme, code)
    assert response.status_code == 200, response.text
    assert not (tmp_path / "export.ran").exists(), "the export was executed"
    answer = response.json()
    assert answer["config"]["agent"]["instructions"] == "You are a helpful assistant."
    assert [s["what"] for s in answer["not_carried"]] == ["instructions computed in code"]
