"""JSON the guard decodes itself, strictly: an object naming a key twice is refused, never the last one kept.

Standard library only, so the drain workflow can use it without importing the event parsers (pydantic).
"""

from __future__ import annotations

import json
from typing import Any


class DuplicateKeyError(ValueError):
    """A JSON object names the same key twice (the last would silently win in `json.loads`)."""


def refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`json.loads`'s object_pairs_hook: the object as a dict, or DuplicateKeyError naming the key."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(f"duplicate key {key[:100]!r} in one JSON object (which one counts is ambiguous)")
        out[key] = value
    return out


def loads_strict(text: str | bytes) -> Any:
    """JSON text decoded as the guard reads any JSON it decodes itself: a duplicate key is a DuplicateKeyError
    (a ValueError), never the last value silently winning."""
    return json.loads(text, object_pairs_hook=refuse_duplicate_keys)
