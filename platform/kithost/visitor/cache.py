"""The in-process cache of published configs: one per app (a part of ``app.state``), so one
per API process.

- A public key maps to a :class:`CachedWidget`: what the database said (published config,
  allowed origins, revision) and, per requesting origin, the response body serialised once
  with its ETag. At most ``max_widgets`` widgets (least recently used go first) and
  ``MAX_ORIGINS`` remembered origins per widget. Keys with nothing published (unknown ones
  among them) are remembered apart, at most ``MAX_UNKNOWN``: anyone may ask for any number
  of random keys, and those must not push out the widgets visitors are shown. A string that
  cannot be a public key (``service.is_public_key``) is answered without a lookup or entry.
- An entry is served from memory for ``revalidate_after`` seconds (``REVALIDATE_SECONDS``)
  after it was checked. The first request after that checks the widget's revision with one
  cheap query, shared by every request for that widget meanwhile, and reloads the widget when
  the revision moved. So once a publish (or any change of the widget) has committed, no
  process serves the old config for longer than ``REVALIDATE_SECONDS`` plus that query.
- When the database is unreachable (:data:`DATABASE_ERRORS`), or has not answered within
  ``wait`` seconds (``KITHOST_CONFIG_WAIT_SECONDS``), the last good entry is served (with a
  warning) and checked again ``revalidate_after`` seconds later; without one, the request is
  answered 503 ``config_unavailable``.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from functools import partial

import structlog

from kithost import rls
from kithost.db import Sessionmaker
from kithost.errors import DATABASE_DOWN, NotFound, ServiceUnavailable
from kithost.health.metrics import CONFIG_CACHE
from kithost.models.base import utcnow
from kithost.state import AppState
from kithost.visitor import repository, service
from kithost.visitor.service import AllowedEntry, Published, Rendered, Snapshot
from kithost.widgets.preview import is_preview_key
from kithost.widgets.preview import read as read_preview

log = structlog.get_logger(__name__)

REVALIDATE_SECONDS = 2.0
MAX_WIDGETS = 10_000
MAX_ORIGINS = 64
MAX_UNKNOWN = 1_000
DATABASE_ERRORS = (*DATABASE_DOWN, OSError)
"""What counts as the database being unreachable: the app's own ``DATABASE_DOWN``, or the
network failing under the driver. Any other error (a query the database refuses, such as one
comparing a key holding a NUL character) is a bug or bad input: neither an outage to
answer 503 ``config_unavailable`` for, nor a reason to serve a stale config."""


class PublishedAnswers:
    """A published widget and, per requesting origin, its response (rendered once)."""

    __slots__ = ("_answers", "_chatkit_script", "_rendered", "published")

    def __init__(self, published: Published, chatkit_script: str) -> None:
        self.published = published
        self._chatkit_script = chatkit_script
        self._answers: dict[str, Rendered | None] = {}
        self._rendered: dict[AllowedEntry, Rendered] = {}

    def for_origin(self, origin: str) -> Rendered | None:
        """The response for a visitor from ``origin``; None when it may not show the widget."""
        try:
            return self._answers[origin]
        except KeyError:
            pass
        entry = self.published.entry_for(origin)
        answer = None if entry is None else self._render(entry)
        if len(self._answers) >= MAX_ORIGINS:
            del self._answers[next(iter(self._answers))]
        self._answers[origin] = answer
        return answer

    def admits(self, origin: str | None, own_origins: frozenset[str]) -> bool:
        """Whether a visitor route may serve a page of ``origin``: one the widget allows
        (remembered per origin), or one of Kithost's own (the framed page ``/w/{pk}``)."""
        return origin is not None and (origin in own_origins or self.for_origin(origin) is not None)

    def _render(self, entry: AllowedEntry) -> Rendered:
        rendered = self._rendered.get(entry)
        if rendered is None:
            rendered = self._rendered[entry] = service.render(
                self.published, entry, self._chatkit_script
            )
        return rendered


class CachedWidget:
    """One public key as the cache holds it."""

    __slots__ = ("answers", "fresh_until", "revision")

    def __init__(self, snapshot: Snapshot, fresh_until: float, chatkit_script: str) -> None:
        self.revision = snapshot.revision
        self.answers = (
            None
            if snapshot.published is None
            else PublishedAnswers(snapshot.published, chatkit_script)
        )
        """None: no such widget, or nothing published."""
        self.fresh_until = fresh_until


_HIT, _REVALIDATED, _LOADED, _STALE = (
    CONFIG_CACHE.labels(result) for result in ("hit", "revalidated", "loaded", "stale")
)


class ConfigCache:
    def __init__(
        self,
        *,
        max_widgets: int = MAX_WIDGETS,
        revalidate_after: float = REVALIDATE_SECONDS,
        wait: float,
        clock: Callable[[], float] = time.monotonic,
        chatkit_script: str,
    ) -> None:
        self._chatkit_script = chatkit_script
        """Where ChatKit's script loads from, handed to every visitor (the app's setting)."""
        self._widgets: OrderedDict[str, CachedWidget] = OrderedDict()
        self._unknown: OrderedDict[str, CachedWidget] = OrderedDict()
        """Keys with nothing published, kept apart from :attr:`_widgets`."""
        self._refreshing: dict[str, asyncio.Task[CachedWidget]] = {}
        self._max_widgets = max_widgets
        self._revalidate_after = revalidate_after
        self._wait = wait
        self._clock = clock

    async def aclose(self) -> None:
        """Stop the checks under way (no request waits for them any more)."""
        refreshing = list(self._refreshing.values())
        for task in refreshing:
            task.cancel()
        await asyncio.gather(*refreshing, return_exceptions=True)

    async def get(self, public_key: str, sessionmaker: Sessionmaker) -> CachedWidget:
        """The widget as checked at most ``revalidate_after`` seconds ago (if the database
        answers)."""
        cached = self._widgets.get(public_key) or self._unknown.get(public_key)
        if cached is not None and self._clock() < cached.fresh_until:
            self._entries(cached).move_to_end(public_key)
            _HIT.inc()
            return cached
        task = self._refreshing.get(public_key)
        if task is None:
            task = asyncio.create_task(self._refresh(public_key, cached, sessionmaker))
            self._refreshing[public_key] = task
            task.add_done_callback(partial(self._refreshed, public_key))
        try:
            return await asyncio.wait_for(asyncio.shield(task), self._wait)
        except TimeoutError:
            if cached is None:
                raise _unavailable() from None
            # The refresh goes on and replaces the entry when it ends; until then, or until
            # the next check is due, requests take the last good entry without waiting.
            self._serve_stale(public_key, cached, "the database did not answer in time")
            return cached

    async def _refresh(
        self, public_key: str, cached: CachedWidget | None, sessionmaker: Sessionmaker
    ) -> CachedWidget:
        try:
            async with sessionmaker() as session:  # read only: nothing to commit
                await rls.bypass(session, rls.Bypass.public_key)
                if (
                    cached is not None
                    and await repository.revision(session, public_key) == cached.revision
                ):
                    widget = cached
                    widget.fresh_until = self._fresh_until()
                    _REVALIDATED.inc()
                else:
                    snapshot = await service.load(session, public_key)
                    widget = CachedWidget(snapshot, self._fresh_until(), self._chatkit_script)
                    _LOADED.inc()
        except DATABASE_ERRORS as exc:
            if cached is None:
                raise _unavailable() from exc
            self._serve_stale(public_key, cached, repr(exc))
            return cached
        entries = self._entries(widget)
        (self._unknown if entries is self._widgets else self._widgets).pop(public_key, None)
        entries[public_key] = widget
        entries.move_to_end(public_key)
        while len(entries) > (self._max_widgets if entries is self._widgets else MAX_UNKNOWN):
            entries.popitem(last=False)
        return widget

    def _entries(self, widget: CachedWidget) -> OrderedDict[str, CachedWidget]:
        """Where ``widget`` is kept: with the widgets, or with the keys that show nothing."""
        return self._widgets if widget.answers is not None else self._unknown

    def _serve_stale(self, public_key: str, cached: CachedWidget, reason: str) -> None:
        log.warning(
            "visitor_config_stale", public_key=public_key, revision=cached.revision, reason=reason
        )
        cached.fresh_until = self._fresh_until()
        _STALE.inc()

    def _fresh_until(self) -> float:
        return self._clock() + self._revalidate_after

    def _refreshed(self, public_key: str, task: asyncio.Task[CachedWidget]) -> None:
        self._refreshing.pop(public_key, None)
        if not task.cancelled():
            task.exception()  # retrieved here when every waiting request has given up


def _unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(
        "The widget's configuration cannot be loaded right now.", code="config_unavailable"
    )


async def find_answers(state: AppState, public_key: str) -> PublishedAnswers | None:
    """The published widget behind a visitor route, from the app's cache, or the draft
    behind a preview key (``widgets.preview``, read each time); None when the key is
    unknown, expired or nothing is published."""
    if service.is_public_key(public_key):
        return (await state.part(ConfigCache).get(public_key, state.sessionmaker)).answers
    if not is_preview_key(public_key):
        return None
    preview = read_preview(state.settings, public_key, utcnow())
    if preview is None:
        return None
    async with state.sessionmaker() as session:
        await rls.set_tenant(session, preview.tenant_id)  # signed by Kithost
        published = await service.load_preview(session, public_key, preview)
    if published is None:
        return None
    return PublishedAnswers(published, state.settings.chatkit_script_url)


async def published_answers(state: AppState, public_key: str) -> PublishedAnswers:
    """:func:`find_answers`, or 404 ``widget_not_found``."""
    answers = await find_answers(state, public_key)
    if answers is None:
        raise NotFound(
            "No published widget has this key.",
            code="widget_not_found",
            headers={"Cache-Control": "no-store", "Vary": "Origin"},
        )
    return answers
