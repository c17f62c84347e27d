"""``kithost analytics rollup`` refuses a range it should not run: reversed, empty, or longer
than 366 days (each hour is recomputed against the database: a typo's century ran for hours
and took gigabytes)."""

from __future__ import annotations

import json

import pytest

from kithost.settings import Settings
from tests.cli import kithost


@pytest.mark.parametrize(
    ("since", "until", "field", "detail"),
    [
        ("1000-01-01", "2026-01-01", "since", "At most 366 days at once: split the range."),
        ("2026-03-01", "2026-02-01", "until", "--until must be after --since."),
        ("2026-03-01", "2026-03-01", "until", "--until must be after --since."),
    ],
)
def test_a_range_it_should_not_run_is_refused(
    cli_settings: Settings, since: str, until: str, field: str, detail: str
) -> None:
    args = ("analytics", "rollup", "--since", since, "--until", until)
    result = kithost(cli_settings, *args, "--json")
    assert result.returncode == 1
    problem = json.loads(result.stderr)
    assert problem["code"] == "validation_failed"
    assert problem["detail"] == detail
    assert [e["field"] for e in problem["errors"]] == [field]
    assert result.stdout == ""
    human = kithost(cli_settings, *args)
    assert human.returncode == 1
    assert human.stderr.startswith(f"error (validation_failed): {detail}")


def test_a_year_is_accepted(cli_settings: Settings) -> None:
    args = ("analytics", "rollup", "--since", "2025-01-01", "--until", "2026-01-01", "--json")
    result = kithost(cli_settings, *args)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["hours"] == 365 * 24
