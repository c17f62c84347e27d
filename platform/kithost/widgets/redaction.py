"""What reads show of a widget's tools' URLs: the parts that look like credentials, hidden.

An MCP server (or a tenant's endpoint) may take its key in its URL (``…/sse?token=…``,
``…/key/abc123/``, ``…/s/<long token>/mcp``), where the header secret (``mcp-secrets``)
cannot go. The configuration keeps the URL whole (Kithost connects with it) and every read
of a configuration shows those parts as :data:`HIDDEN`: the API's drafts, versions and
import answers (``widgets.schemas.StoredConfig``), the audit log's entries (recorded so) and
so the dashboard. Hidden are a query value whose name says it is a credential (``token``,
``api_key``, ``sig``…) or that looks random (:func:`_looks_random`), and a path segment
that looks random or follows one naming a credential (``/key/abc123``).

A configuration saved back with a tool's URL as read keeps the URL stored for that tool
(:func:`restored`); a URL that still holds :data:`HIDDEN` is refused (``url_hidden``,
``widgets.service.check_tools``): give it whole.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

HIDDEN = "*****"
"""What a hidden part of a URL reads as."""
_CREDENTIAL = re.compile(
    r"token|key|secret|auth|sig|pass|pwd|credential|session|jwt|bearer|code", re.IGNORECASE
)
_RANDOM = re.compile(r"[A-Za-z0-9_.~+/=%-]{16,}")


def _looks_random(text: str) -> bool:
    """At least 16 characters of a token's alphabet, with letters and digits."""
    return (
        _RANDOM.fullmatch(text) is not None
        and any(c.isdigit() for c in text)
        and any(c.isalpha() for c in text)
    )


def hidden_url(url: str) -> str:
    """``url`` with the parts that look like credentials as :data:`HIDDEN` (``url`` itself
    when it has none)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # no URL Kithost would have saved: nothing of it is shown
        return HIDDEN
    segments, follows_name = [], False
    for segment in parts.path.split("/"):
        hide = bool(segment) and (follows_name or _looks_random(segment))
        segments.append(HIDDEN if hide else segment)
        follows_name = _CREDENTIAL.search(unquote(segment)) is not None
    pairs = []
    for pair in parts.query.split("&") if parts.query else []:
        name, equals, value = pair.partition("=")
        if value and (_CREDENTIAL.search(unquote(name)) or _looks_random(value)):
            value = HIDDEN
        pairs.append(name + equals + value)
    shown = parts._replace(path="/".join(segments), query="&".join(pairs))
    return url if shown == parts else urlunsplit(shown)


def _tools(config: Any) -> list[dict[str, Any]]:
    agent = config.get("agent") if isinstance(config, dict) else None
    tools = agent.get("tools") if isinstance(agent, dict) else None
    return [t for t in tools if isinstance(t, dict)] if isinstance(tools, list) else []


def redacted(config: Any) -> Any:
    """A configuration as stored (JSON) as reads show it: its tools' URLs :func:`hidden_url`
    (a copy; the rest as it is)."""
    tools = _tools(config)
    if not any(isinstance(t.get("url"), str) for t in tools):
        return config
    agent = config["agent"]
    shown = [
        {**t, "url": hidden_url(t["url"])} if isinstance(t.get("url"), str) else t
        for t in agent["tools"]
    ]
    return {**config, "agent": {**agent, "tools": shown}}


def restored(config: Any, stored: Any) -> Any:
    """``config`` (a draft to save, JSON) with each tool's URL as read (``HIDDEN`` in it, and
    :func:`hidden_url` of the URL the ``stored`` draft has for that tool id) put back as
    stored; the rest as it is."""
    kept: dict[Any, str] = {
        t.get("id"): t["url"] for t in _tools(stored) if isinstance(t.get("url"), str)
    }
    back: dict[int, str] = {}
    for index, tool in enumerate(_tools(config)):
        given, stored_url = tool.get("url"), kept.get(tool.get("id"))
        as_read = stored_url is not None and hidden_url(stored_url) == given
        if isinstance(given, str) and HIDDEN in given and stored_url is not None and as_read:
            back[index] = stored_url
    if not back:
        return config
    agent = config["agent"]
    given = [t for t in agent["tools"] if isinstance(t, dict)]
    if len(given) != len(agent["tools"]):  # not a configuration the check takes anyway
        return config
    put_back = [{**t, "url": back[i]} if i in back else t for i, t in enumerate(given)]
    return {**config, "agent": {**agent, "tools": put_back}}
