"""The visitor routes admit an ``Origin`` only as browsers spell it: another spelling of an
allowed origin is refused, never normalised and echoed back in its own spelling."""

from __future__ import annotations

import time

import httpx2
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.errors import KithostError
from kithost.kit.origins import normalize_pattern
from kithost.models import Placement
from kithost.visitor.routes import browser_origin
from kithost.widgets.config import WidgetConfig
from tests.visitor.helpers import assert_refused, config_url, make_widget

ALLOWED = "https://direct.test"
SPELLINGS = [
    "https://direct.test.",  # another origin to browsers (the same host to DNS)
    "https://DIRECT.test",
    "HTTPS://direct.test",
    "https://direct.test:443",
    "https://direct.test:0443",
    "https://direct.test/",
    " https://direct.test",
]
DIRECT = WidgetConfig(placement=Placement.direct)


def event_batch() -> dict[str, object]:
    now = int(time.time() * 1000)
    event = {"id": "abcdefghijklmnop", "name": "loader.loaded", "time": now, "data": {}}
    return {"end_user": None, "events": [event]}


@pytest.mark.parametrize("origin", SPELLINGS)
async def test_another_spelling_of_an_allowed_origin_is_refused_everywhere(
    client: httpx2.AsyncClient, db: AsyncSession, origin: str
) -> None:
    widget = await make_widget(db, [(ALLOWED, "domain_pk_direct")], DIRECT)
    base = f"/v1/embed/{widget.public_key}"
    headers = {"Origin": origin}
    config = await client.get(config_url(widget), headers=headers)
    assert_refused(config, 403, "origin_not_allowed")
    assert "domain_pk_direct" not in config.text
    preflight = await client.options(
        config_url(widget), headers={**headers, "Access-Control-Request-Method": "GET"}
    )
    assert_refused(preflight, 403, "origin_not_allowed")
    session = await client.post(
        f"{base}/session", headers=headers, json={"device_id": "anon_" + "d" * 24}
    )
    assert_refused(session, 403, "origin_not_allowed")
    events = await client.post(f"{base}/events", headers=headers, json=event_batch())
    assert_refused(events, 403, "origin_not_allowed")


async def test_the_allowed_origin_as_browsers_send_it_is_answered_for_itself(
    client: httpx2.AsyncClient, db: AsyncSession
) -> None:
    widget = await make_widget(db, [(ALLOWED, "domain_pk_direct")], DIRECT)
    base = f"/v1/embed/{widget.public_key}"
    config = await client.get(config_url(widget), headers={"Origin": ALLOWED})
    assert config.status_code == 200
    assert config.headers["access-control-allow-origin"] == ALLOWED
    assert config.json()["domain_key"] == "domain_pk_direct"
    events = await client.post(f"{base}/events", headers={"Origin": ALLOWED}, json=event_batch())
    assert events.status_code == 202, events.text
    assert events.headers["access-control-allow-origin"] == ALLOWED


ORIGINISH = st.builds(
    "".join,
    st.lists(
        st.sampled_from(
            [
                "https://",
                "http://",
                "HTTP",
                "a",
                "B",
                ".",
                ":",
                "443",
                "/",
                "[::1]",
                "xn--",
                "é",
                "*",
                " ",
            ]
        ),
        max_size=8,
    ),
)


@given(st.one_of(st.text(max_size=40), ORIGINISH))
@example("https://direct.test.")
@example("http://[::1]:3000")
@example("https://xn--bcher-kva.example")
def test_an_origin_is_admitted_only_in_its_normal_form(origin: str) -> None:
    """Whatever arrives is refused (a 403 problem) or is its own normal form."""
    try:
        admitted = browser_origin(origin)
    except KithostError as refused:
        status = refused.status
    else:
        assert normalize_pattern(admitted, allow_insecure=True) == admitted
        return
    assert status == 403
