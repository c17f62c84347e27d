"""The before/after diff that audit entries of changes carry."""

from __future__ import annotations

from kithost.audit.service import changes


def test_only_the_fields_that_differ_are_kept() -> None:
    before = {"name": "Acme", "role": "viewer", "revision": 3}
    after = {"name": "Acme", "role": "editor", "revision": 4}
    assert changes(before, after) == {
        "before": {"role": "viewer", "revision": 3},
        "after": {"role": "editor", "revision": 4},
    }


def test_a_field_on_one_side_only_shows_on_that_side() -> None:
    assert changes({"last4": None, "gone": 1}, {"last4": None, "new": [1]}) == {
        "before": {"gone": 1},
        "after": {"new": [1]},
    }


def test_nothing_changed_is_two_empty_sides() -> None:
    same = {"origins": ["https://a.example"], "nested": {"x": 1}}
    assert changes(same, dict(same)) == {"before": {}, "after": {}}
    assert changes({"flag": False}, {"flag": None}) == {
        "before": {"flag": False},
        "after": {"flag": None},
    }
