"""The Agent Builder exit probed as a customer and an attacker would use it. An export whose
reading would cost far more than its size is 422 on ``code``; nothing it holds is dropped
unsaid or widened (settings computed or out of range, arguments not read, filtered file
searches, web searches limited otherwise, approvals, guardrails kept elsewhere, servers at
addresses Kithost may not reach); what it says nothing of stays the widget's; a hosted
widget converts before it imports, its file size capped at what Kithost takes; another
tenant's widget is 404."""

from __future__ import annotations

import asyncio
import copy
import uuid
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.models import Role, Widget
from kithost.widgets.agent_import import read_export
from tests.conftest import state_of
from tests.factories import login, make_member, make_tenant, set_draft
from tests.widgets.helpers import HOSTED, WIDGETS, Acme, create, export, hosted_widget, url


async def post_import(
    client: httpx2.AsyncClient, acme: Acme, code: str, *, dry_run: bool = False
) -> httpx2.Response:
    widget = url(await create(client, acme))
    params = {"dry_run": "true"} if dry_run else {}
    return await client.post(
        widget + "/agent-import", json={"code": code}, params=params, headers=acme.matching('"1"')
    )


async def dry_run(client: httpx2.AsyncClient, acme: Acme, code: str) -> dict[str, Any]:
    response = await post_import(client, acme, code, dry_run=True)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def listed(answer: dict[str, Any]) -> list[tuple[int, str]]:
    return [(s["line"], s["what"]) for s in answer["not_carried"]]


def refused(response: httpx2.Response, code: str) -> None:
    assert response.status_code == 422, response.text[:500]
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["code"], [(e["field"], e["type"]) for e in body["errors"]]) == (
        code,
        [("code", code)],
    )


async def test_a_value_named_by_many_tools_is_read_within_a_bound(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    ids = "[" + ", ".join("'x'" for _ in range(1000)) + "]"
    uses = ",\n".join("    FileSearchTool(vector_store_ids=IDS)" for _ in range(60))
    code = f"IDS = {ids}\na = Agent(name='A', tools=[\n{uses}\n])\n"
    refused(await post_import(client, acme, code, dry_run=True), "export_too_complex")


async def test_an_f_string_of_many_fields_is_refused_before_it_is_parsed(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    code = "a = Agent(name='A')\nx = f'" + "{a}" * 10_001 + "'\n"
    refused(await post_import(client, acme, code, dry_run=True), "export_too_complex")


async def test_a_tool_named_twice_is_listed_once(client: httpx2.AsyncClient, acme: Acme) -> None:
    code = (
        "@function_tool\ndef refund(order: str) -> str:\n    return order\n\n"
        "a = Agent(name='A', tools=[refund, refund])\n"
    )
    response = await post_import(client, acme, code, dry_run=True)
    assert response.status_code == 200, response.text
    assert [(s["line"], s["what"]) for s in response.json()["not_carried"]] == [
        (2, "function tool refund")
    ]


async def test_another_tenants_widget_is_not_found(
    client: httpx2.AsyncClient, acme: Acme, app: FastAPI, db: AsyncSession
) -> None:
    other = await make_tenant(db)
    owner = await make_member(db, other, Role.owner)
    headers = (await login(app, db, owner)).headers
    made = await client.post(
        f"/api/v1/tenants/{other.slug}/widgets", json={"name": "x"}, headers=headers
    )
    assert made.status_code == 201, made.text
    theirs = f"{WIDGETS}/{made.json()['id']}"
    for path, params in (
        ("/agent-import", {}),
        ("/agent-import", {"dry_run": "true"}),
        ("/convert", {}),
    ):
        response = await client.post(
            theirs + path, json={"code": "a = Agent()"}, params=params, headers=acme.matching('"1"')
        )
        assert (response.status_code, response.json()["code"]) == (404, "widget_not_found")
    shown = await client.get(
        f"/api/v1/tenants/{other.slug}/widgets/{made.json()['id']}", headers=headers
    )
    assert shown.json()["revision"] == 1


TEAM = """\
web = WebSearchTool()
billing = Agent(name="Billing", instructions="You bill.")
TOOLS = [web]
HANDOFFS = (billing,)
triage = Agent(name="Triage", instructions="You route.", tools=TOOLS, handoffs=HANDOFFS)
"""


async def test_tools_and_handoffs_named_or_computed_are_carried_or_listed(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    agent = (await dry_run(client, acme, TEAM))["config"]["agent"]
    assert (agent["name"], [t["id"] for t in agent["tools"]]) == ("Triage", ["web"])
    assert [h["id"] for h in agent["handoffs"]] == ["billing"]

    computed = (
        TEAM.replace("tools=TOOLS", "tools=TOOLS + extra").replace(
            "handoffs=HANDOFFS", "handoffs=list(HANDOFFS)"
        )
        + "async def run_workflow(workflow_input):\n    return await Runner.run(triage, input=[])\n"
    )
    answer = await dry_run(client, acme, computed)
    assert (answer["config"]["agent"]["tools"], answer["config"]["agent"]["handoffs"]) == ([], [])
    assert listed(answer) == [
        (5, "Triage: tools computed in code"),
        (5, "Triage: handoffs computed in code"),
        (2, "agent billing"),
    ]


async def test_agent_settings_it_cannot_carry_are_listed_not_dropped(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    code = """\
settings = ModelSettings(temperature=3, max_tokens=200_000)
a = Agent(
    "Helper",
    name="A",
    instructions="x" * 3,
    model=os.environ["MODEL"],
    model_settings=settings,
    tool_use_behavior="stop_on_first_tool",
    **common,
)
b = Agent(name="B", model_settings=load_settings())
"""
    answer = await dry_run(client, acme, code)
    agent = answer["config"]["agent"]
    assert (agent["model"], agent["temperature"], agent["max_output_tokens"]) == (
        "gpt-4.1-mini",
        None,
        None,
    )
    assert listed(answer) == [
        (5, "instructions computed in code"),
        (6, "A: model"),
        (1, "model_settings.temperature"),
        (1, "model_settings.max_tokens"),
        (3, "A: an argument"),
        (8, "A: tool_use_behavior"),
        (9, "A: **common"),
        (11, "agent b"),
    ]
    assert all(s["instead"] for s in answer["not_carried"])
    other = await dry_run(client, acme, "a = Agent(name='B', model_settings=load())\n")
    assert listed(other) == [(1, "model_settings computed in code")]


async def test_instructions_longer_than_kept_are_listed(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    text = "Be kind. " * 2500
    answer = await dry_run(client, acme, f"a = Agent(name='A', instructions={text!r})\n")
    assert answer["config"]["agent"]["instructions"] == text[:20_000]
    assert listed(answer) == [(1, "A: the instructions' end")]


async def test_a_file_search_with_filters_is_left_out_rather_than_widened(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    code = """\
search = FileSearchTool(
    vector_store_ids=["vs_6911f0c2a4d88191b1e0c5a3d2f7e901"],
    filters={"type": "eq", "key": "audience", "value": "public"},
)
a = Agent(name="A", tools=[search])
"""
    answer = await dry_run(client, acme, code)
    assert answer["config"]["agent"]["tools"] == []
    assert listed(answer) == [(1, "file search with filters")]


async def test_an_mcp_server_that_asked_before_each_call_says_kithost_does_not(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    code = """\
crm = HostedMCPTool(tool_config={"type": "mcp", "server_label": "crm",
                                 "server_url": "https://mcp.acme.example/mcp",
                                 "allowed_tools": ["refund_order"],
                                 "require_approval": "always"})
a = Agent(name="A", tools=[crm])
"""
    answer = await dry_run(client, acme, code)
    [tool] = answer["config"]["agent"]["tools"]
    assert (tool["id"], tool["allowed_tools"]) == ("crm", ["refund_order"])
    assert listed(answer) == [
        (1, "MCP server crm: require_approval"),
        (1, "MCP server crm: its secret"),
    ]
    never = await dry_run(client, acme, code.replace('"always"', '"never"'))
    assert listed(never) == [(1, "MCP server crm: its secret")]


AGENTS = """\
billing = Agent(name="Billing", instructions="You bill.")
triage = Agent(name="Triage", instructions="You route.", handoffs=[billing])
"""


@pytest.mark.parametrize(
    "workflow",
    ids=["no workflow", "starting_agent", "run_streamed"],
    argvalues=[
        "",
        "async def run_workflow(workflow_input):\n"
        "    return await Runner.run(starting_agent=triage, input=[])\n",
        "async def run_workflow(workflow_input):\n"
        "    return Runner.run_streamed(triage, input=[])\n",
    ],
)
async def test_the_agent_that_answers_first_is_the_one_the_workflow_runs(
    client: httpx2.AsyncClient, acme: Acme, workflow: str
) -> None:
    agent = (await dry_run(client, acme, AGENTS + workflow))["config"]["agent"]
    assert (agent["name"], [h["name"] for h in agent["handoffs"]]) == ("Triage", ["Billing"])


async def test_an_mcp_server_kithost_may_not_connect_to_is_listed_with_why(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    servers = [
        ("metadata", "https://169.254.169.254/latest/mcp"),
        ("intranet", "https://10.0.0.7/mcp"),
        ("plain", "http://mcp.acme.example/mcp"),
        ("crm", "https://mcp.acme.example/mcp"),
    ]
    code = (
        "".join(
            f"{label} = HostedMCPTool(tool_config={{'type': 'mcp', 'server_label': {label!r}, "
            f"'server_url': {address!r}, 'allowed_tools': ['find']}})\n"
            for label, address in servers
        )
        + "a = Agent(name='A', tools=[metadata, intranet, plain, crm])\n"
    )
    widget = url(await create(client, acme))
    response = await client.post(
        widget + "/agent-import", json={"code": code}, headers=acme.matching('"1"')
    )
    assert response.status_code == 200, response.text
    [tool] = response.json()["config"]["agent"]["tools"]
    assert (tool["id"], tool["url"]) == ("crm", "https://mcp.acme.example/mcp")
    notes = {s["what"]: (s["line"], s["instead"]) for s in response.json()["not_carried"]}
    assert notes.keys() == {
        "MCP server metadata: its URL",
        "MCP server intranet: its URL",
        "MCP server plain: its URL",
        "MCP server crm: its secret",
    }
    assert "link-local" in notes["MCP server metadata: its URL"][1]
    assert "private" in notes["MCP server intranet: its URL"][1]
    assert "https:// is required" in notes["MCP server plain: its URL"][1]
    shown = (await client.get(widget, headers=acme.headers)).json()["config"]["agent"]["tools"]
    assert shown == [tool]


async def test_a_hosted_widget_is_converted_before_an_agent_is_imported(
    client: httpx2.AsyncClient, acme: Acme, db: AsyncSession
) -> None:
    widget = await hosted_widget(client, acme, db)
    for params in ({}, {"dry_run": "true"}):
        refused = await client.post(
            widget + "/agent-import",
            json={"code": export("single_agent")},
            params=params,
            headers=acme.matching('"2"'),
        )
        assert (refused.status_code, refused.json()["code"]) == (409, "widget_hosted")
    assert (await client.get(widget, headers=acme.headers)).json()["revision"] == 2

    converted = await client.post(widget + "/convert", headers=acme.matching('"2"'))
    assert converted.status_code == 200, converted.text
    imported = await client.post(
        widget + "/agent-import",
        json={"code": export("single_agent")},
        headers=acme.matching('"3"'),
    )
    assert imported.status_code == 200, imported.text
    config = imported.json()["config"]
    assert (config["mode"], config["agent"]["model"]) == ("self_hosted", "gpt-4.1-mini")
    assert config["agent"]["instructions"].startswith("You help Acme's customers")


async def test_a_converted_widget_offers_no_file_larger_than_kithost_takes(
    client: httpx2.AsyncClient, acme: Acme, app: FastAPI, db: AsyncSession
) -> None:
    widget = await hosted_widget(client, acme, db)
    stored = await db.get_one(Widget, uuid.UUID(widget.rsplit("/", 1)[1]))
    hosted = copy.deepcopy(HOSTED["hosted"])
    hosted["chatkit_configuration"]["file_upload"]["max_file_size"] = 512
    set_draft(stored, {**stored.draft, "hosted": hosted})
    await db.flush()
    cap = state_of(app).settings.chat_attachment_max_bytes
    assert cap < 512 * 1024 * 1024

    converted = await client.post(widget + "/convert", headers=acme.matching('"3"'))

    assert converted.status_code == 200, converted.text
    answer = converted.json()
    attachments = answer["widget"]["config"]["chatkit"]["composer"]["attachments"]
    assert attachments["maxSize"] == {"*": cap}
    [note] = [
        n for n in answer["not_carried"] if n["setting"].startswith("chatkit_configuration.file")
    ]
    assert note["setting"] == "chatkit_configuration.file_upload.max_file_size: 512"
    assert str(cap) in note["instead"]


async def test_an_import_keeps_the_widgets_settings_the_export_says_nothing_of(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    own = {
        "model_api": "chat_completions",
        "messages_per_user_per_day": 40,
        "limits": {"max_turns": 3, "max_tool_calls": 2, "max_seconds": 60},
        "guardrails": {"max_input_length": 500, "refusal_message": "Not here, sorry."},
    }
    widget = url(await create(client, acme, config={"agent": own}))
    response = await client.post(
        widget + "/agent-import",
        json={"code": export("single_agent")},
        headers=acme.matching('"1"'),
    )
    assert response.status_code == 200, response.text
    agent = response.json()["config"]["agent"]
    assert agent["instructions"].startswith("You help Acme's customers")
    kept = {key: agent[key] for key in ("model_api", "messages_per_user_per_day", "limits")}
    assert kept == {key: own[key] for key in kept}
    assert agent["guardrails"] == {
        "max_input_length": 500,
        "refused_topics": [],
        "moderation": False,
        "refusal_message": "Not here, sorry.",
    }


LIMITED = "WebSearchTool(filters={'allowed_domains': ['help.acme.example']})"


@pytest.mark.parametrize(
    ("main", "member"),
    [(LIMITED, "WebSearchTool()"), ("WebSearchTool()", LIMITED)],
    ids=["member unlimited", "member limited"],
)
async def test_agents_searching_the_web_limited_otherwise_are_listed_never_widened(
    client: httpx2.AsyncClient, acme: Acme, main: str, member: str
) -> None:
    code = (
        f"billing = Agent(name='Billing', instructions='You bill.', tools=[{member}])\n"
        f"triage = Agent(name='Triage', instructions='You route.', tools=[{main}], "
        "handoffs=[billing])\n"
    )
    answer = await dry_run(client, acme, code)
    agent = answer["config"]["agent"]
    [web] = agent["tools"]
    assert web["allowed_domains"] == (["help.acme.example"] if main == LIMITED else [])
    assert (agent["main_tools"], agent["handoffs"][0]["tools"]) == (["web"], [])
    assert listed(answer) == [(1, "a web search limited otherwise")]
    both = await dry_run(client, acme, f"a = Agent(name='A', tools=[{main}, {member}])\n")
    assert both["config"]["agent"]["tools"] == [web]
    assert listed(both) == [(1, "a web search limited otherwise")]


async def test_a_handoff_agent_without_instructions_or_with_a_long_description_is_imported(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    described = "When the customer asks about money. " * 40
    code = (
        f"billing = Agent(name='Billing', instructions='', handoff_description={described!r})\n"
        "triage = Agent(name='Triage', instructions='You route.', handoffs=[billing])\n"
    )
    answer = await dry_run(client, acme, code)
    [billing] = answer["config"]["agent"]["handoffs"]
    assert billing["instructions"] == "You are a helpful assistant."
    assert billing["description"] == described[:1024]
    assert listed(answer) == [(1, "Billing: the handoff description's end")]


@pytest.mark.parametrize(
    "code",
    [
        "a = Agent(name='A')\n"
        "async def run_workflow(workflow_input):\n"
        "    config = {'guardrails': [{'name': 'Moderation', 'config': {}}]}\n"
        "    return await Runner.run(a, input=[])\n",
        "a = Agent(name='A')\n"
        "CHECKS = [{'name': 'Moderation', 'config': {}}]\n"
        "config = {'guardrails': CHECKS}\n",
        "a = Agent(name='A')\n"
        "config = {'guardrails': [{'name': 'Moderation', 'config': {'categories': CATEGORIES}}]}\n",
    ],
    ids=["in run_workflow", "named", "config named"],
)
async def test_a_moderation_guardrail_is_carried_wherever_the_export_keeps_it(
    client: httpx2.AsyncClient, acme: Acme, code: str
) -> None:
    answer = await dry_run(client, acme, code)
    assert answer["config"]["agent"]["guardrails"]["moderation"] is True
    assert listed(answer) == []


async def test_guardrails_it_cannot_read_are_listed(client: httpx2.AsyncClient, acme: Acme) -> None:
    code = "a = Agent(name='A')\nconfig = {'guardrails': load_guardrails()}\n"
    answer = await dry_run(client, acme, code)
    assert answer["config"]["agent"]["guardrails"]["moderation"] is False
    assert listed(answer) == [(2, "guardrails computed in code")]


async def test_handoff_agents_named_alike_get_ids_of_their_own(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    code = (
        "p = Agent(name='agent_2', instructions='x')\n"
        "agent_2 = Agent(name='agent_2', instructions='y')\n"
        "m = Agent(name='M', handoffs=[p, agent_2])\n"
    )
    handoffs = (await dry_run(client, acme, code))["config"]["agent"]["handoffs"]
    assert [(h["id"], h["name"]) for h in handoffs] == [
        ("agent_2", "agent_2"),
        ("agent_3", "agent_2 (agent_2)"),
    ]


async def test_an_export_is_read_off_the_event_loop(
    client: httpx2.AsyncClient, acme: Acme, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large export takes a few hundred milliseconds of parsing: on the event loop, every
    other request of the process (every tenant's visitors) would wait for it."""
    on_loop: list[bool] = []

    def spy(source: str, *given: Any) -> Any:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return read_export(source, *given)

    monkeypatch.setattr("kithost.widgets.service.read_export", spy)
    response = await post_import(client, acme, "a = Agent(name='A')\n", dry_run=True)
    assert response.status_code == 200, response.text
    assert on_loop == [False]


@pytest.mark.parametrize(
    "start", ["\ufeff", "# -*- coding: latin-1 -*-\n", "\ufeff# coding: utf-8\n"]
)
async def test_an_export_saved_with_a_byte_order_mark_or_a_declared_encoding_is_read(
    client: httpx2.AsyncClient, acme: Acme, start: str
) -> None:
    """Python reads a file starting with a BOM (and one declaring its encoding): so does the
    import, whose text arrives decoded already."""
    answer = await dry_run(client, acme, start + export("single_agent"))
    assert answer["config"]["agent"]["instructions"].startswith("You help Acme's customers")
    assert answer["not_carried"] == []
