"""Text shown to people: characters that can reorder or hide what they read."""

import unicodedata

INVISIBLE_MESSAGE = "must not contain control, bidi or other invisible characters"
INVISIBLE_TYPE = "invisible_character"
"""The type of the field error refusing such text, wherever it arrives."""

_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
"""Unicode categories kept out of text shown to people or used as ids: control, format
(bidi overrides and isolates, zero-width characters), surrogate, private-use, unassigned."""


def has_invisible(text: str) -> bool:
    """Whether ``text`` holds a character of :data:`_INVISIBLE`: what text shown to people
    (a name, a thread's title) must not, since it can reorder or hide what they read."""
    return any(unicodedata.category(c) in _INVISIBLE for c in text)


def without_invisible(text: str) -> str:
    """``text`` with every character of :data:`_INVISIBLE` removed (titles Kithost makes
    from what a visitor wrote)."""
    return "".join(c for c in text if unicodedata.category(c) not in _INVISIBLE)
