"""The built browser code, held in memory, and the framed page's HTML.

``cd embed && npm run build`` writes ``dist/``: ``embed.js`` (the loader), ``frame.js`` (the
framed page's script), ``direct.js`` (the direct placement's chat, which the loader loads by
its hashed name), each also under a content-hashed name, and ``manifest.json`` naming them.
The files are read once per process, on first use, with their gzip encodings.

A widget's own loader (``/embed/{pk}.js``, :func:`widget_loader`) is ``embed.js`` after one
statement that hands it the widget's key and preset; see ``embed/src/embed.ts`` for why the
preset holds the launcher's look and nothing more.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kithost.errors import ServiceUnavailable
from kithost.kit.headers import page_policy
from kithost.kit.markup import json_in_markup
from kithost.settings import Settings
from kithost.visitor.service import AllowedEntry, Published

DIST = Path(__file__).parent / "dist"


@dataclass(frozen=True)
class Script:
    hash: str
    body: bytes
    gzipped: bytes

    @property
    def etag(self) -> str:
        return f'"{self.hash}"'


@dataclass(frozen=True)
class Bundle:
    embed: Script
    frame: Script
    direct: Script


@cache
def bundle(dist: Path = DIST) -> Bundle:
    """The built scripts; 503 ``loader_not_built`` until ``npm run build`` has run."""
    try:
        manifest: dict[str, dict[str, Any]] = json.loads((dist / "manifest.json").read_text())
        scripts = {
            name: _script(manifest[name]["hash"], (dist / manifest[name]["file"]).read_bytes())
            for name in ("embed", "frame", "direct")
        }
    except (OSError, KeyError, ValueError) as exc:
        raise ServiceUnavailable(
            "The loader is not built: run `npm run build` in embed/.", code="loader_not_built"
        ) from exc
    return Bundle(**scripts)


def _script(hash: str, body: bytes) -> Script:
    return Script(hash, body, gzip.compress(body, compresslevel=9, mtime=0))


def widget_loader(published: Published) -> Script:
    """``/embed/{pk}.js``: the loader with the widget's key and launcher preset."""
    preset = {"launcher": published.config["launcher"], "placement": published.config["placement"]}
    return _widget_loader(bundle().embed, published.public_key, json_in_markup(preset))


@lru_cache(maxsize=1024)
def _widget_loader(embed: Script, public_key: str, preset: str) -> Script:
    prelude = (
        f"(function(s){{if(s){{s.dataset.widget={json_in_markup(public_key)};"
        f"s.kithostPreset={preset}}}}})"
        "(document.currentScript);\n"
    ).encode()
    body = prelude + embed.body
    return _script(hashlib.blake2b(body, digest_size=16).hexdigest(), body)


def frame_page(published: Published, settings: Settings, frame_script: str) -> str:
    """The framed page: its setup as JSON (published config, domain key, ChatKit's script)."""
    config = published.config
    setup = {
        "pk": published.public_key,
        "config": config,
        "domainKey": settings.frame_domain_key,
        "cdn": settings.chatkit_script_url,
        "timeoutMs": round(settings.chatkit_script_timeout_seconds * 1000),
    }
    data = json_in_markup(setup)
    title = html.escape(config["chatkit"].get("frameTitle") or config["launcher"]["label"])
    lang = html.escape(config["chatkit"].get("locale") or "en")
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{title}</title></head><body>"
        '<main id="kithost-chat" aria-live="polite"></main>'
        f'<script type="application/json" id="kithost-setup">{data}</script>'
        f'<script src="/w/{frame_script}"></script></body></html>'
    )


NOT_AVAILABLE_PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Chat unavailable</title>'
    "</head><body><p>This chat is not available: no published widget has this key.</p>"
    "</body></html>"
)


def frame_policy(published: Published, settings: Settings) -> str:
    """``Content-Security-Policy``: scripts from Kithost and ChatKit's script's origin only,
    and only the widget's allowed origins may frame the page.

    An IPv6-literal origin (``http://[::1]:3000``) cannot be said in ``frame-ancestors``:
    CSP's host-source grammar has no bracketed form (``host-char`` is letters, digits and
    ``-``; w3c/webappsec#49: deliberately unsupported), and browsers drop such a source. It
    is left out rather than sent to be dropped, so the policy says what browsers enforce:
    the framed page cannot be embedded from such an origin (use ``localhost`` or a name)."""
    sources = (
        " ".join(entry.pattern for entry in published.origins if not _ipv6_literal(entry))
        or "'none'"
    )
    chatkit = urlsplit(settings.chatkit_script_url)
    return page_policy(
        f"script-src 'self' {chatkit.scheme}://{chatkit.netloc}", f"frame-ancestors {sources}"
    )


def _ipv6_literal(entry: AllowedEntry) -> bool:
    """Whether the allowed entry names its host as an IPv6 literal (``[…]``, normalised)."""
    return "://[" in entry.pattern
