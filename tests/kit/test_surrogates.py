"""Lone surrogates in JSON text and in text read from it become U+FFFD
(``kit.surrogates``); pairs, and text after an escaped backslash, stay as they are."""

from __future__ import annotations

import json

import orjson
import pytest

from kithost.kit.surrogates import JsonMender, mend_json, without_lone_surrogates

TEXT = (
    rb'{"a": "x\ud800y", "b": "\uDC00", "c": "\ud83d\ude00", "d": "\\ud800",'
    rb' "e": "\\\ud800", "f": "\ud800\ud800\udc00", "g": "\u00e9\n"}'
)
READ = {
    "a": "x\ufffdy",
    "b": "\ufffd",
    "c": "\U0001f600",
    "d": "\\ud800",
    "e": "\\\ufffd",
    "f": "\ufffd\U00010000",
    "g": "\u00e9\n",
}


def test_json_text_is_mended_to_what_a_strict_parser_reads() -> None:
    mended = mend_json(TEXT)
    assert len(mended) == len(TEXT)
    assert orjson.loads(mended) == READ
    assert mend_json(b'{"plain": "text"}') == b'{"plain": "text"}'


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 11, 13])
def test_text_in_pieces_is_mended_as_a_whole(size: int) -> None:
    for start in range(size):
        mender = JsonMender()
        pieces = [TEXT[:start]] + [TEXT[i : i + size] for i in range(start, len(TEXT), size)]
        assert b"".join(mender.feed(p) for p in pieces) + mender.end() == mend_json(TEXT)


def test_text_read_from_json_keeps_no_lone_surrogate() -> None:
    read = json.loads(TEXT)
    assert {k: without_lone_surrogates(v) for k, v in read.items()} == READ
    plain = "plain text"
    assert without_lone_surrogates(plain) is plain
