"""Reading JSON documents while keeping each record's original text, so a
vendor's record is stored exactly as the vendor sent it."""

from __future__ import annotations

import json
from typing import Any

_DECODER = json.JSONDecoder()
_WS = " \t\r\n"


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WS:
        pos += 1
    return pos


def array_items(text: str, pos: int = 0) -> tuple[list[tuple[Any, str]], int]:
    """``(value, raw text)`` of each element of the JSON array at ``pos``;
    returns them and the position after the array."""
    pos = _skip(text, pos)
    if text[pos : pos + 1] != "[":
        raise ValueError(f"expected a JSON array at {pos}")
    items: list[tuple[Any, str]] = []
    pos = _skip(text, pos + 1)
    if text[pos : pos + 1] == "]":
        return items, pos + 1
    while True:
        value, end = _DECODER.raw_decode(text, pos)
        items.append((value, text[pos:end]))
        pos = _skip(text, end)
        if text[pos : pos + 1] == ",":
            pos = _skip(text, pos + 1)
            continue
        if text[pos : pos + 1] == "]":
            return items, pos + 1
        raise ValueError(f"malformed JSON array at {pos}")


def object_arrays(text: str) -> dict[str, list[tuple[Any, str]]]:
    """For a JSON object, each array-valued key's ``(value, raw text)``
    elements (other keys are skipped)."""
    pos = _skip(text, 0)
    if text[pos : pos + 1] != "{":
        raise ValueError("expected a JSON object")
    out: dict[str, list[tuple[Any, str]]] = {}
    pos = _skip(text, pos + 1)
    if text[pos : pos + 1] == "}":
        return out
    while True:
        key, pos = _DECODER.raw_decode(text, pos)
        pos = _skip(text, pos)
        if text[pos : pos + 1] != ":":
            raise ValueError(f"malformed JSON object at {pos}")
        pos = _skip(text, pos + 1)
        if text[pos : pos + 1] == "[":
            out[key], pos = array_items(text, pos)
        else:
            _, pos = _DECODER.raw_decode(text, pos)
        pos = _skip(text, pos)
        if text[pos : pos + 1] == ",":
            pos = _skip(text, pos + 1)
            continue
        if text[pos : pos + 1] == "}":
            return out
        raise ValueError(f"malformed JSON object at {pos}")
