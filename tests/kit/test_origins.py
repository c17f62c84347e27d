"""Origin normalisation and matching, with a property test against a plain reference."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kithost.kit.origins import (
    DEFAULT_PORTS,
    InvalidOrigin,
    normalize_pattern,
    origin_allowed,
    origin_matches,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://Shop.Example.COM", "https://shop.example.com"),
        ("https://shop.example.com:443", "https://shop.example.com"),
        ("http://localhost:80", "http://localhost"),
        ("https://shop.example.com:8443/", "https://shop.example.com:8443"),
        ("https://shop.example.com.", "https://shop.example.com"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
        ("https://*.Example.com", "https://*.example.com"),
        ("https://*.bücher.example:8443", "https://*.xn--bcher-kva.example:8443"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://[::1]:3000", "http://[::1]:3000"),
    ],
)
def test_patterns_are_normalised(given: str, expected: str) -> None:
    assert normalize_pattern(given) == expected


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("shop.example.com", "scheme"),
        ("ftp://shop.example.com", "scheme"),
        ("https://shop.example.com/path", "path"),
        ("https://shop.example.com?q=1", "query"),
        ("https://shop.example.com#top", "fragment"),
        ("https://user:pw@shop.example.com", "user"),
        ("https://shop.example.com:99999", "port"),
        ("https://a.*.example.com", "leftmost"),
        ("https://*example.com", "leftmost"),
        ("https://*.com", "two labels"),
        ("https://*.*.example.com", "leftmost"),
        ("http://shop.example.com", "localhost"),
        ("https://", "host"),
        ("https://exa mple.com", "host name"),
    ],
)
def test_malformed_patterns_are_refused_with_a_reason(given: str, reason: str) -> None:
    with pytest.raises(InvalidOrigin, match=reason):
        normalize_pattern(given)


def test_insecure_origins_can_be_allowed_explicitly() -> None:
    assert normalize_pattern("http://intranet.example", allow_insecure=True) == (
        "http://intranet.example"
    )


def test_wildcards_match_any_depth_but_not_the_bare_domain() -> None:
    pattern = normalize_pattern("https://*.example.com")
    assert origin_matches("https://a.example.com", pattern)
    assert origin_matches("https://a.b.example.com", pattern)
    assert not origin_matches("https://example.com", pattern)
    assert not origin_matches("https://badexample.com", pattern)
    assert not origin_matches("https://a.example.com.evil.test", pattern)
    assert not origin_matches("http://a.example.com", pattern)
    assert not origin_matches("https://a.example.com:8443", pattern)


def test_an_origin_longer_than_kithost_keeps_never_matches() -> None:
    pattern = normalize_pattern("https://*.example.com")
    host = ".".join(["a" * 60] * 4)  # a name DNS resolves, under a wildcard
    longest = f"https://{host[: 255 - len('https://.example.com')]}.example.com"
    assert len(longest) == 255
    assert origin_matches(longest, pattern)
    assert not origin_matches(f"https://a{longest.removeprefix('https://')}", pattern)


def test_garbage_origins_never_match() -> None:
    patterns = [normalize_pattern("https://shop.example.com")]
    for origin in (None, "", "null", "https://shop.example.com/x", "javascript:alert(1)"):
        assert not origin_allowed(origin, patterns)
    assert origin_allowed("https://SHOP.example.com:443", patterns)


# --- property test -------------------------------------------------------------------------

labels = st.lists(st.from_regex(r"[a-z0-9]{1,4}", fullmatch=True), min_size=1, max_size=4)
schemes = st.sampled_from(["http", "https"])
ports = st.one_of(st.none(), st.sampled_from([80, 443, 8000, 8443]))


def render(scheme: str, host: list[str], port: int | None, *, shout: bool, dot: bool) -> str:
    text = ".".join(host) + ("." if dot else "")
    text = text.upper() if shout else text
    return f"{scheme}://{text}" if port is None else f"{scheme}://{text}:{port}"


def reference(
    origin: tuple[str, list[str], int | None],
    pattern: tuple[str, list[str], int | None],
    wildcard: bool,
) -> bool:
    """The rule, stated on parts rather than strings."""
    (scheme, host, port), (p_scheme, p_host, p_port) = origin, pattern
    effective = None if port == DEFAULT_PORTS[scheme] else port
    p_effective = None if p_port == DEFAULT_PORTS[p_scheme] else p_port
    if (scheme, effective) != (p_scheme, p_effective):
        return False
    if wildcard:
        return len(host) > len(p_host) and host[-len(p_host) :] == p_host
    return host == p_host


@given(
    scheme=schemes,
    host=labels,
    port=ports,
    p_scheme=schemes,
    p_host=st.lists(st.from_regex(r"[a-z0-9]{1,4}", fullmatch=True), min_size=2, max_size=3),
    p_port=ports,
    wildcard=st.booleans(),
    shout=st.booleans(),
    dot=st.booleans(),
    share_suffix=st.booleans(),
)
def test_matching_agrees_with_the_reference(
    scheme: str,
    host: list[str],
    port: int | None,
    p_scheme: str,
    p_host: list[str],
    p_port: int | None,
    wildcard: bool,
    shout: bool,
    dot: bool,
    share_suffix: bool,
) -> None:
    if share_suffix:  # make matches likely, not just possible
        host = host + p_host if wildcard else list(p_host)
        scheme, port = p_scheme, p_port
    pattern_text = render(
        p_scheme, (["*"] if wildcard else []) + p_host, p_port, shout=False, dot=False
    )
    pattern = normalize_pattern(pattern_text, allow_insecure=True)
    origin = render(scheme, host, port, shout=shout, dot=dot)
    expected = reference((scheme, host, port), (p_scheme, p_host, p_port), wildcard)
    assert origin_matches(origin, pattern) is expected
