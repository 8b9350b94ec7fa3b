"""JSON the guard decodes itself refuses a key named twice in one object, naming it."""

from __future__ import annotations

import pytest
from daemon_guard.adapters.strict_json import DuplicateKeyError, loads_strict


@pytest.mark.parametrize(("text", "key"), [
    ('{"EC2InstanceId": "i-*", "EC2InstanceId": "i-0123456789abcdef0"}', "EC2InstanceId"),
    ('{"detail": {"stoppedTask": "a", "stoppedTask": "b"}}', "stoppedTask"),
    ('[{"a": 1}, {"b": 1, "b": 2}]', "b"),
])
def test_a_duplicate_key_anywhere_is_refused_with_the_key_named(text: str, key: str) -> None:
    # GIVEN JSON with one key twice in one object / WHEN decoded / THEN refused, the key named
    with pytest.raises(DuplicateKeyError, match=f"duplicate key '{key}'"):
        loads_strict(text)


def test_a_duplicate_key_is_a_value_error_so_callers_that_tolerate_bad_json_tolerate_it_too() -> None:
    # GIVEN the drain workflow's callback handling, which ignores a payload that is not JSON (ValueError)
    # THEN a duplicate key is one such ValueError
    assert issubclass(DuplicateKeyError, ValueError)


def test_the_same_key_in_different_objects_is_fine() -> None:
    # GIVEN two objects each with its own "a" / WHEN decoded / THEN both kept
    assert loads_strict('{"a": {"a": 1}, "b": [{"a": 2}]}') == {"a": {"a": 1}, "b": [{"a": 2}]}
