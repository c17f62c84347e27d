"""Widget action templates: an ``open_url`` template's host is written out in full, so a
payload can never choose where the visitor is sent."""

from __future__ import annotations

import pytest

from kithost.errors import InvalidInput
from kithost.widgets.config import parse_config


def open_url(url: str) -> dict[str, object]:
    return {"actions": {"open": {"kind": "open_url", "url": url}}}


@pytest.mark.parametrize(
    "url",
    [
        "https://shop.example/orders/{order_id}",
        "https://shop.example",
        "http://shop.example:8080/?q={q}",
        "https://shop.example.#{anchor}",
        "https://[2001:db8::1]/x/{id}",
    ],
)
def test_a_template_with_a_fixed_host_is_accepted(url: str) -> None:
    assert parse_config(open_url(url)).actions["open"].model_dump()["url"] == url


@pytest.mark.parametrize(
    "url",
    [
        "https://a{host}",
        "https://shop.example{path}",
        "https://{sub}.shop.example/",
        "https://shop.example:{port}/",
        "https://shop.example@{host}/",
        "https://user@shop.example/",
        "https://shop.example\\{path}",
        "https:///{host}",
        "javascript:alert(1)",
    ],
)
def test_a_template_whose_host_is_not_plainly_written_out_is_refused(url: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_config(open_url(url))
    assert [e.field for e in refused.value.errors or []] == ["config.actions.open.url"]
