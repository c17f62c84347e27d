"""Importing an export's handoffs and guardrails (dry runs): what does not map is listed
with its line and what to do instead; what maps is bounded by the config's own limits.
(The full fixture, imported and chatted with, is ``tests/chat/test_imported_agent.py``.)"""

from __future__ import annotations

from typing import Any

import httpx2

from tests.widgets.helpers import Acme, create, url

TEAM = """
from agents import Agent, Runner, handoff

refunds = Agent(name="Refunds", instructions="You refund.")
billing = Agent(name="Billing", instructions="You bill.", handoffs=[refunds])
invoices = Agent(name="billing", instructions="You send invoices.")
lookup = make_agent("Lookup")
triage = Agent(
    name="Triage",
    instructions="You route.",
    handoffs=[billing, lookup, handoff(billing), handoff(agent=billing), invoices],
)
guardrails_config = {
    "guardrails": [
        {"name": "URL Filter", "config": {"url_allow_list": []}},
        {"name": "Keyword Filter", "config": {"keywords": KEYWORDS}},
    ]
}


async def run_workflow(workflow_input):
    return await Runner.run(triage, input=[])
"""


async def dry_run(client: httpx2.AsyncClient, acme: Acme, code: str) -> dict[str, Any]:
    widget = await create(client, acme)
    response = await client.post(
        url(widget, "/agent-import"),
        json={"code": code},
        params={"dry_run": "true"},
        headers=acme.headers,
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def line_of(code: str, text: str) -> int:
    return next(n for n, line in enumerate(code.splitlines(), 1) if text in line)


async def test_handoffs_it_cannot_follow_and_guardrails_kithost_lacks_are_listed(
    client: httpx2.AsyncClient, acme: Acme
) -> None:
    keywords = [f"word{n}" for n in range(60)]
    code = TEAM.replace("KEYWORDS", repr(["x", *keywords]))

    answer = await dry_run(client, acme, code)

    agent = answer["config"]["agent"]
    assert [(h["id"], h["name"]) for h in agent["handoffs"]] == [
        ("billing", "Billing"),
        ("invoices", "billing (invoices)"),
    ]
    assert agent["guardrails"]["refused_topics"] == keywords[:50]
    assert agent["guardrails"]["moderation"] is False
    not_carried = [(s["what"], s["line"]) for s in answer["not_carried"]]
    assert not_carried == [
        ("Billing: handoffs", line_of(code, "billing = Agent")),
        ("a handoff Kithost cannot follow", line_of(code, "handoffs=[billing, lookup")),
        ("guardrail URL Filter", line_of(code, "URL Filter")),
        ("keywords", line_of(code, "Keyword Filter")),
        ("agent refunds", line_of(code, "refunds = Agent")),
    ]
    assert all(s["instead"] for s in answer["not_carried"])
