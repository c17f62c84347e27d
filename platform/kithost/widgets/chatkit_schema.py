"""Validation of a widget's ChatKit options against ChatKit's own types.

``chatkit_options.schema.json`` is generated from ``@openai/chatkit``'s ``ChatKitOptions``
(``cd embed && npm run schema``; a test fails when it drifts from the installed package).
A widget stores only the options that are data: not ``api`` (Kithost supplies it), not
``initialThread`` (per visitor), and not the function-only groups ``entities``, ``commands``
and ``widgets`` (widget actions have their own mapping).
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any, cast

from jsonschema import Draft7Validator, TypeChecker, validators
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator

from kithost.errors import FieldError

SCHEMA_PATH = Path(__file__).with_name("chatkit_options.schema.json")
NOT_DATA = frozenset({"api", "initialThread", "entities", "commands", "widgets"})


@cache
def widget_options_schema() -> dict[str, Any]:
    """The JSON Schema of the ChatKit options a widget may store."""
    generated: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    definitions = dict(generated["definitions"])
    options = dict(definitions["ChatKitOptions"])
    options["properties"] = {k: v for k, v in options["properties"].items() if k not in NOT_DATA}
    options["required"] = [k for k in options.get("required", []) if k not in NOT_DATA]
    definitions["ChatKitOptions"] = options
    return {"$schema": generated["$schema"], "$ref": generated["$ref"], "definitions": definitions}


def _finite_number(checker: TypeChecker, instance: object) -> bool:
    """JSON Schema's ``number``, finite: Python reads ``1e400`` as infinity, which JSON
    cannot hold (it was stored as null)."""
    return Draft7Validator.TYPE_CHECKER.is_type(instance, "number") and math.isfinite(
        cast(float, instance)
    )


_Validator: type[Validator] = validators.extend(  # type: ignore[no-untyped-call]
    Draft7Validator,
    type_checker=Draft7Validator.TYPE_CHECKER.redefine("number", _finite_number),
)


@cache
def _validator() -> Validator:
    return _Validator(widget_options_schema())


def chatkit_errors(options: Any, field: str = "chatkit") -> list[FieldError]:
    """Every way ``options`` breaks the schema, each named by its JSON path and rule."""
    # An anyOf (theme: a colour scheme or a ThemeOption) fails as a whole; report the
    # branch's own error, which names the exact path and rule.
    found = (best_match([e]) for e in _validator().iter_errors(options))
    errors = sorted((e for e in found if e is not None), key=lambda e: e.json_path)
    return [
        FieldError(
            field=field + e.json_path.removeprefix("$"),
            message=e.message,
            type=str(e.validator),
        )
        for e in errors
    ]
