"""Identity tokens from tenant backends, checked with an independent JOSE library (PyJWT)."""

from __future__ import annotations

import base64
import json
import time

import jwt as pyjwt
import pytest

from kithost.errors import InvalidInput, Unauthorized
from kithost.sessions.identity import anonymous_user, verify_identity_token

SECRET = "wis_" + "s" * 60
NOW = 1_800_000_000.0


def token(claims: dict[str, object], secret: str = SECRET, alg: str = "HS256") -> str:
    return pyjwt.encode(claims, secret, algorithm=alg)


def test_a_valid_token_names_a_verified_user() -> None:
    user = verify_identity_token(
        token({"sub": "42", "exp": NOW + 600, "name": "Ada", "email": "ada@x.test"}),
        SECRET,
        now=NOW,
    )
    assert (user.id, user.verified, user.name, user.email) == ("u:42", True, "Ada", "ada@x.test")
    started = token({"sub": "42", "exp": NOW + 600, "nbf": NOW + 30})
    assert verify_identity_token(started, SECRET, now=NOW).id == "u:42"


def _none_token(claims: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (token({"sub": "42", "exp": NOW - 3600}), "expired"),
        (token({"sub": "42", "exp": NOW + 600}, secret="wis_other" + "x" * 40), "signed"),
        (_none_token({"sub": "42", "exp": NOW + 600}), "signed"),
        (token({"exp": NOW + 600}), "sub"),
        (token({"sub": "", "exp": NOW + 600}), "sub"),
        (token({"sub": 42, "exp": NOW + 600}), "sub"),
        (token({"sub": "42"}), "exp"),
        (token({"sub": "42", "exp": NOW + 3 * 86400}), "24 hours"),
        (token({"sub": "42", "exp": NOW + 600, "nbf": NOW + 300}), "not valid yet"),
        (token({"sub": "42", "exp": NOW + 600, "nbf": "soon"}), "not valid yet"),
        (token({"sub": "42", "exp": float("nan")}), "exp"),
        (token({"sub": "42", "exp": NOW + 600, "nbf": float("nan")}), "not valid yet"),
        (token({"sub": "42", "exp": NOW + 600, "nbf": float("-inf")}), "not valid yet"),
        (token({"sub": "4\u202e2", "exp": NOW + 600}), "sub must not contain"),
        (token({"sub": "42\n", "exp": NOW + 600}), "sub must not contain"),
        (token({"sub": "4\u200b2", "exp": NOW + 600}), "sub must not contain"),
        (token({"sub": "42", "exp": NOW + 600, "name": "A\x1b[2J"}), "name must not contain"),
        ("not.a.jwt", "signed"),
        ("", "signed"),
    ],
)
def test_flawed_tokens_are_refused(bad: str, why: str) -> None:
    with pytest.raises(Unauthorized, match=why) as refused:
        verify_identity_token(bad, SECRET, now=NOW)
    assert refused.value.code == "invalid_identity_token"


def test_other_algorithms_are_refused() -> None:
    hs512 = token({"sub": "42", "exp": time.time() + 600}, alg="HS512")
    with pytest.raises(Unauthorized):
        verify_identity_token(hs512, SECRET)


def test_anonymous_ids_are_prefixed_and_validated() -> None:
    user = anonymous_user("anon_" + "a1B2-_" * 4)
    assert (user.id, user.verified) == ("a:anon_" + "a1B2-_" * 4, False)
    for bad in (
        "",
        "anon_short",
        "u:42",
        "anon_" + "x" * 65,
        "anon_bad char ok xx",
        "ANON_" + "x" * 20,
    ):
        with pytest.raises(InvalidInput):
            anonymous_user(bad)
