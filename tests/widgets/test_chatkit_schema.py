"""The ChatKit options schema: generated from @openai/chatkit, and what it accepts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kithost.widgets.chatkit_schema import SCHEMA_PATH, chatkit_errors

EMBED = Path(__file__).resolve().parents[2] / "embed"

EVERY_OPTION: dict[str, Any] = {
    "locale": "de-DE",
    "theme": {
        "colorScheme": "dark",
        "radius": "soft",
        "density": "compact",
        "color": {
            "accent": {"primary": "#0f766e", "level": 2},
            "grayscale": {"hue": 220, "tint": 6, "shade": -1},
            "surface": {"background": "#101010", "foreground": "#fafafa"},
        },
        "typography": {
            "baseSize": 16,
            "fontFamily": "Inter, sans-serif",
            "fontFamilyMono": "JetBrains Mono, monospace",
            "fontSources": [
                {
                    "family": "Inter",
                    "src": "https://fonts.example.com/inter.woff2",
                    "weight": 400,
                    "style": "normal",
                    "display": "swap",
                }
            ],
        },
    },
    "frameTitle": "Support chat",
    "header": {"enabled": True, "title": {"enabled": True, "text": "Acme help"}},
    "history": {"enabled": True, "showDelete": False, "showRename": True},
    "startScreen": {
        "greeting": "How can we help?",
        "prompts": [
            {"label": "Track order", "prompt": "Where is my order?", "icon": "map-pin"},
            {"label": "Returns", "prompt": [{"type": "input_text", "text": "Return"}]},
            {"label": "Lucide", "prompt": "x", "icon": "lucide:rocket"},
        ],
    },
    "threadItemActions": {"feedback": True, "retry": True},
    "composer": {
        "placeholder": "Ask Acme",
        "attachments": {
            "enabled": True,
            "maxSize": {"image/*": 5_000_000, "*": 1_000_000},
            "maxCount": 3,
            "accept": {"image/*": [".png", ".jpg"]},
        },
        "tools": [{"id": "search", "label": "Search", "icon": "search", "pinned": True}],
        "models": [{"id": "fast", "label": "Fast", "default": True}],
        "dictation": {"enabled": True},
    },
    "disclaimer": {"text": "AI can make *mistakes*.", "highContrast": True},
    "thread": {"autoScroll": True},
}


def test_the_committed_schema_matches_the_installed_package(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    subprocess.run(
        ["npm", "run", "schema", "--silent", "--", "--out", str(out)],
        cwd=EMBED,
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert json.loads(out.read_text()) == json.loads(SCHEMA_PATH.read_text()), (
        "regenerate with: cd embed && npm run schema"
    )


def test_a_config_using_every_data_option_is_valid() -> None:
    assert chatkit_errors(EVERY_OPTION) == []
    assert chatkit_errors({}) == []


@pytest.mark.parametrize(
    ("options", "field", "rule"),
    [
        ({"theme": {"radius": "round-ish"}}, "chatkit.theme.radius", "enum"),
        ({"theme": {"typography": {"baseSize": 13}}}, "chatkit.theme.typography.baseSize", "enum"),
        ({"locale": "xx-XX"}, "chatkit.locale", "anyOf"),
        ({"composer": {"attachments": {}}}, "chatkit.composer.attachments", "required"),
        (
            {"startScreen": {"prompts": [{"label": "x"}]}},
            "chatkit.startScreen.prompts[0]",
            "required",
        ),
        ({"frameTitle": 42}, "chatkit.frameTitle", "type"),
        ({"api": {"url": "https://x"}}, "chatkit", "additionalProperties"),
        ({"widgets": {}}, "chatkit", "additionalProperties"),
        ({"colour": "red"}, "chatkit", "additionalProperties"),
        ([], "chatkit", "type"),
    ],
)
def test_invalid_configs_name_the_path_and_the_rule(options: Any, field: str, rule: str) -> None:
    errors = chatkit_errors(options)
    assert [(e.field, e.type) for e in errors] == [(field, rule)]
    assert errors[0].message
