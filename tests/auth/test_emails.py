"""The email an account is known by (``users.service.normalize_email``): the spellings of
one mailbox are one account, two mailboxes are never one. The local part is matched
caselessly (Unicode's full case folding between NFKC normalizations), the domain as IDNA
maps it (never case-folded: IDNA keeps ``ß`` apart from ``ss``)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from kithost.errors import InvalidInput
from kithost.users.service import normalize_email

ONE_MAILBOX = [
    # U+0130 (a capital I with a dot) is I and U+0307, whose small letter is i and U+0307.
    ("\u0130@example.test", "I\u0307@example.test", "i\u0307@example.test"),
    # A Greek word's sigma: capital, final and medial.
    (
        "\u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3@example.test",
        "\u03bf\u03b4\u03c5\u03c3\u03c3\u03b5\u03c5\u03c2@example.test",
        "\u03bf\u03b4\u03c5\u03c3\u03c3\u03b5\u03c5\u03c3@example.test",
    ),
    ("STRASSE@example.test", "stra\u00dfe@example.test", "STRA\u1e9eE@example.test"),
    # Alpha with psili and prosgegrammeni: its small letter's iota subscript is an iota.
    ("\u1f88@example.test", "\u1f80@example.test", "\u1f00\u03b9@example.test"),
    ("\uff56iewer@Example.test", "viewer@example.test"),
    ("a@B\u00dcCHER.example", "a@b\u00fccher.example", "a@xn--bcher-kva.example"),
    ("a@\u0130stanbul.example", "a@xn--istanbul-o0e.example"),
]
TWO_MAILBOXES = [
    ("i@example.test", "\u0130@example.test"),
    ("i@example.test", "\u0131@example.test"),  # a dotless i is a letter of its own
    ("a@fa\u00df.de", "a@fass.de"),  # two domains (IDNA 2008)
    ("a@istanbul.example", "a@\u0130stanbul.example"),
]


@pytest.mark.parametrize("spellings", ONE_MAILBOX)
def test_the_spellings_of_one_mailbox_are_one_account(spellings: tuple[str, ...]) -> None:
    assert len({normalize_email(s) for s in spellings}) == 1, spellings


@pytest.mark.parametrize("mailboxes", TWO_MAILBOXES)
def test_two_mailboxes_are_two_accounts(mailboxes: tuple[str, str]) -> None:
    first, second = mailboxes
    assert normalize_email(first) != normalize_email(second)


LOCAL_PARTS = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Z")),
    min_size=1,
    max_size=12,
)
DOMAINS = st.sampled_from(
    ["example.test", "B\u00dcCHER.example", "\u0130stanbul.example", "fa\u00df.de"]
)


def _normalized(email: str) -> str | None:
    """The account's email, or None when refused (a 422 on ``email``)."""
    try:
        return normalize_email(email)
    except InvalidInput as refused:
        fields = [e.field for e in refused.errors or []]
    assert fields == ["email"]
    return None


@given(LOCAL_PARTS, DOMAINS)
@example("\u0130", "example.test")
@example("\u03c2", "example.test")
@example("\u1f88", "fa\u00df.de")
@example("\u00df" * 32, "example.test")
def test_an_accounts_email_is_its_own_and_its_capitals(local: str, domain: str) -> None:
    """What an address becomes is an account's email as it stands (normalized again, it
    stays: the stored email signs in and is invited as itself; NFC, as RFC 6532 wants
    addresses), and so is the address in capitals where the capitals are the same letters
    to Unicode's caseless matching (a dotless i's capital is I, whose small letter is i)."""
    email = _normalized(f"{local}@{domain}")
    if email is None:
        return
    assert _normalized(email) == email
    assert unicodedata.is_normalized("NFC", email)
    if local.upper().casefold() == local.casefold():
        assert _normalized(f"{local.upper()}@{domain}") == email
