"""Lone surrogates: code points (U+D800 to U+DFFF) that JSON can spell (``"\\ud800"``) and
Python's ``json`` reads, but that UTF-8 cannot carry, so text holding one fails wherever it is
written next (a model request, a stream event, a database row). What a model or a tool
answers may hold them (an escape of a string that was cut, any server's ``JSON.stringify``):
where such text enters, each becomes U+FFFD, the replacement character, as a NUL does where
it is stored."""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"
_LONE = re.compile("[\ud800-\udfff]")
"""In text Python decoded from JSON: a pair of escapes was joined into one code point, so
any surrogate left is alone."""
_ESCAPE = re.compile(
    rb"(\\+)u([dD][89abAB][0-9a-fA-F]{2})(\\u[dD][c-fC-F][0-9a-fA-F]{2})?"
    rb"|(\\+)u[dD][c-fC-F][0-9a-fA-F]{2}"
)
"""A surrogate's escape in JSON text (a high one with the low one after it, if any), with the
backslashes before it: after an even number of them it is no escape but text."""
_HIGH_AT_END = re.compile(rb"(\\+)u[dD][89abAB][0-9a-fA-F]{2}\Z")
_ESCAPE_LENGTH = len(rb"\ud800\udc00")
_REPLACED = rb"\ufffd"


def without_lone_surrogates(text: str) -> str:
    """``text`` with every lone surrogate as U+FFFD (the same object when it has none)."""
    if text.isascii() or not _LONE.search(text):
        return text
    return _LONE.sub(REPLACEMENT, text)


def mend_json(raw: bytes) -> bytes:
    """JSON text ``raw`` with the escape of every lone surrogate as ``\\ufffd`` (pairs are
    kept): what a strict parser (pydantic's, orjson) then reads instead of refusing it. The
    text keeps its length (an escape for an escape)."""
    if rb"\u" not in raw:
        return raw
    return _ESCAPE.sub(_mended, raw)


def _mended(match: re.Match[bytes]) -> bytes:
    slashes = match.group(1) if match.group(1) is not None else match.group(4)
    if len(slashes) % 2 == 0 or match.group(3) is not None:
        return match.group(0)  # text after an escaped backslash, or a pair
    return slashes[:-1] + _REPLACED


class JsonMender:
    """:func:`mend_json` for JSON text that arrives in pieces: an escape cut between two
    pieces is held until the next (:meth:`feed`), or the end (:meth:`end`)."""

    def __init__(self) -> None:
        self._held = b""

    def feed(self, piece: bytes) -> bytes:
        """What of the text so far can be passed on, mended."""
        text = self._held + piece
        cut = text.find(b"\\", max(0, len(text) - _ESCAPE_LENGTH))
        if cut == -1:
            cut = len(text)
        while cut > 0 and text[cut - 1] == ord("\\"):  # the whole run of backslashes
            cut -= 1
        high = _HIGH_AT_END.search(text, 0, cut)  # it may pair with an escape held
        if high is not None and len(high.group(1)) % 2 == 1:
            cut = high.start()
        self._held = text[cut:]
        return mend_json(text[:cut])

    def end(self) -> bytes:
        """The rest of the text, mended."""
        held, self._held = self._held, b""
        return mend_json(held)
