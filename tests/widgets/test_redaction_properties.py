"""Hypothesis over ``widgets.redaction``, which reads tools' URLs from configurations clients
send: whatever the URL, showing it never fails, a configuration saved back as read gets the
stored URL again, and a token in the query named like a credential never shows."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from kithost.widgets.redaction import HIDDEN, hidden_url, redacted, restored

URL_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=80)
PARTS = st.lists(
    st.text(alphabet="abcdefXYZ0123456789-_.~%=+/", min_size=0, max_size=24), max_size=5
)


def config(*urls: str) -> dict[str, Any]:
    tools = [{"type": "mcp", "id": f"t{i}", "url": u} for i, u in enumerate(urls)]
    return {"agent": {"name": "A", "tools": [*tools, {"type": "client", "id": "c"}]}}


@given(URL_TEXT)
@example("http://[::1")
@example("https://x.example:99999/p?q")
def test_showing_any_url_never_fails(url: str) -> None:
    assert isinstance(hidden_url(url), str)
    assert restored(redacted(config(url)), config(url)) == config(url)


@given(PARTS, PARTS)
@example(["key", "abc123"], [])
def test_a_config_saved_back_as_read_gets_its_urls_again(path: list[str], query: list[str]) -> None:
    url = "https://mcp.acme.example/" + "/".join(path)
    if query:
        url += "?" + "&".join(f"p{i}={v}" for i, v in enumerate(query))
    stored = config(url, "https://other.acme.example/sse?token=abc")
    assert restored(redacted(stored), stored) == stored


@given(st.sampled_from(["token", "api_key", "apiKey", "sig", "access_token", "AUTH"]), PARTS)
def test_a_query_value_named_like_a_credential_never_shows(name: str, values: list[str]) -> None:
    value = "".join(values) or "v"
    shown = hidden_url(f"https://mcp.acme.example/sse?{name}={value}&profile=shop")
    assert shown == f"https://mcp.acme.example/sse?{name}={HIDDEN}&profile=shop"
