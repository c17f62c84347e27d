"""``app.state``: the parts ``create_app`` builds, nothing made on first use, and what its
lifespan closes."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from kithost.app import create_app
from kithost.settings import Settings
from kithost.visitor.cache import ConfigCache
from tests.conftest import state_of


def test_the_state_takes_no_attribute_it_does_not_declare(app: FastAPI) -> None:
    state = state_of(app)
    with pytest.raises(AttributeError, match="visitor_cache"):
        app.state.visitor_cache = state.part(ConfigCache)


class Part:
    def __init__(self, name: str, closed: list[str]) -> None:
        self.name = name
        self.closed = closed

    async def aclose(self) -> None:
        self.closed.append(self.name)


class Later(Part):
    """A part added after :class:`Part` (so one that may use it)."""


async def test_leaving_the_lifespan_closes_the_parts_the_last_added_first(
    settings: Settings,
) -> None:
    app = create_app(settings)
    closed: list[str] = []
    state_of(app).add(Part("first", closed), Later("later", closed))
    async with app.router.lifespan_context(app):
        assert closed == []
    assert closed == ["later", "first"]
