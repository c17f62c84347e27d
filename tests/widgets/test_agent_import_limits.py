"""What an export carries only as far as Kithost can keep it: a web search limited to domains
stays limited (never widened to the whole web when its limit cannot be read), an MCP
server's URL keeps no credentials, and names and domains that do not fit are listed rather
than refusing the whole import on a field of a configuration the tenant never sent."""

from __future__ import annotations

from typing import Any

import httpx2

from tests.widgets.helpers import Acme, create, url


async def imported(client: httpx2.AsyncClient, acme: Acme, code: str) -> dict[str, Any]:
    widget = url(await create(client, acme))
    response = await client.post(
        widget + "/agent-import", json={"code": code}, headers=acme.matching('"1"')
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    shown = await client.get(widget, headers=acme.headers)
    assert shown.json()["config"] == answer["config"]
    return answer


def web(filters: str) -> str:
    return f"web = WebSearchTool(filters={filters})\na = Agent(name='A', tools=[web])\n"


def listed(answer: dict[str, Any]) -> list[str]:
    return [s["what"] for s in answer["not_carried"]]


async def test_a_web_search_limit_it_cannot_read_leaves_the_web_search_out(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    for filters in ("load_filters()", "{'allowed_domains': DOMAINS + ['x.example']}"):
        answer = await imported(client, acme, web(filters))
        assert answer["config"]["agent"]["tools"] == [], filters
        assert listed(answer) == ["web search: domains Kithost cannot read"]
    answer = await imported(client, acme, web("{'allowed_domains': ['not a domain', 7]}"))
    assert answer["config"]["agent"]["tools"] == []
    assert listed(answer) == [
        "web search domain 'not a domain'",
        "web search domain 7",
        "web search",
    ]


async def test_a_web_search_keeps_the_domains_that_fit(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    many = [f"d{n}.acme.example" for n in range(22)]
    code = web(
        "WebSearchToolFilters(allowed_domains="
        f"{['Help.Acme.example', 'https://docs.acme.example/faq', 'help.acme.example.', *many]!r})"
    )
    answer = await imported(client, acme, code)
    [tool] = answer["config"]["agent"]["tools"]
    assert tool["allowed_domains"] == ["help.acme.example", "docs.acme.example", *many[:18]]
    assert listed(answer) == [f"web search domain '{d}'" for d in many[18:]]
    unlimited = await imported(client, acme, web("None"))
    assert unlimited["config"]["agent"]["tools"][0]["allowed_domains"] == []
    assert listed(unlimited) == []


def mcp(url: str, tools: list[str]) -> str:
    return (
        f"crm = HostedMCPTool(tool_config={{'type': 'mcp', 'server_label': 'crm', "
        f"'server_url': {url!r}, 'allowed_tools': {tools!r}}})\n"
        "a = Agent(name='A', tools=[crm])\n"
    )


async def test_an_mcp_servers_url_keeps_no_credentials(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    widget = url(await create(client, acme))
    code = mcp("https://ops:hunter2-secret@mcp.acme.example:8443/mcp?x=1", ["find_order"])
    response = await client.post(
        widget + "/agent-import", json={"code": code}, headers=acme.matching('"1"')
    )
    assert response.status_code == 200, response.text
    [tool] = response.json()["config"]["agent"]["tools"]
    assert tool["url"] == "https://mcp.acme.example:8443/mcp?x=1"
    assert "hunter2" not in response.text
    assert "hunter2" not in (await client.get(widget, headers=acme.headers)).text
    [note] = response.json()["not_carried"]
    assert (note["what"], "credentials in its URL" in note["instead"]) == (
        "MCP server crm: its secret",
        True,
    )


async def test_an_mcp_servers_tools_and_url_that_do_not_fit_are_listed(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    names = ["find_order", "find_order", "bad name!", *(f"t{n}" for n in range(70))]
    answer = await imported(client, acme, mcp("https://mcp.acme.example/mcp", names))
    [tool] = answer["config"]["agent"]["tools"]
    assert tool["allowed_tools"] == ["find_order", *(f"t{n}" for n in range(63))]
    assert listed(answer) == [
        "MCP server crm: tool 'bad name!'",
        *(f"MCP server crm: tool t{n}" for n in range(63, 70)),
        "MCP server crm: its secret",
    ]
    answer = await imported(client, acme, mcp("ftp://mcp.acme.example/mcp", ["find_order"]))
    assert answer["config"]["agent"]["tools"] == []
    assert listed(answer) == ["MCP server crm: its URL"]


async def test_lone_surrogates_in_its_strings_become_replacement_characters(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    code = (
        "a = Agent(name='Help\\ud800', instructions='Hi \\udc00 there', model='gpt-5\\ud800')\n"
        "config = {'guardrails': [{'name': 'Keyword Filter', "
        "'config': {'keywords': ['refunds\\ud800']}}]}\n"
    )
    agent = (await imported(client, acme, code))["config"]["agent"]
    assert (agent["name"], agent["instructions"], agent["model"]) == (
        "Help\ufffd",
        "Hi \ufffd there",
        "gpt-5\ufffd",
    )
    assert agent["guardrails"]["refused_topics"] == ["refunds\ufffd"]
