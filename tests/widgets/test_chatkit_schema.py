"""The ChatKit options schema: generated from @openai/chatkit, and what it accepts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kithost.widgets.chatkit_schema import SCHEMA_PATH, chatkit_errors
from tests.widgets.helpers import EVERY_OPTION

EMBED = Path(__file__).resolve().parents[2] / "embed"


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
