"""Files the CLI reads, bounded before they are read: regular files only, at most a limit, strict JSON.

Every file a command reads goes through `read_json`. It opens without blocking (a FIFO cannot hang
the command), refuses anything but a regular file (FIFO, device such as /dev/zero, directory),
refuses a file whose size is past the limit before reading a byte of it, and reads at most the
limit plus one byte (a file that grows meanwhile is still refused). The JSON is then parsed with
no NaN or Infinity, no duplicate key in any object (the last would silently win: refused with the
key named), at most `MAX_DEPTH` levels deep, and its top level of the kind expected (checked on
the first byte, before a large document is parsed).

Limits: an event, EventBridge's maximum event size (`MAX_EVENT_BYTES`, 256 KiB); a configuration,
`MAX_CONFIG_BYTES`; a STATE.json snapshot, `MAX_STATE_BYTES`, sized for a cluster at ECS's quota of
5,000 container instances with about ten tasks each, as `daemon-guard snapshot` writes them
(about 3 KB an instance and 2.5 KB a task).
"""

from __future__ import annotations

import json
import os
import stat
from typing import Any, Literal

from daemon_guard.adapters.strict_json import DuplicateKeyError, refuse_duplicate_keys

from daemon_guard_cli.errors import InputError

MAX_DEPTH = 64
MAX_EVENT_BYTES = 256 * 1024  # EventBridge's maximum event size, as `daemon_guard.adapters.parsing` (a test holds both)
MAX_CONFIG_BYTES = 1024 * 1024
MAX_STATE_BYTES = 160 * 1024 * 1024
Kind = Literal["object", "any"]
_KINDS = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFDIR: "a directory", stat.S_IFSOCK: "a socket"}

# What a JSON document starting with this byte is (anything else is left to the decoder to name).
_KIND_OF_HEAD = {b"{": "dict", b"[": "list", b'"': "str", b"t": "bool", b"f": "bool", b"n": "NoneType"}

__all__ = ["MAX_CONFIG_BYTES", "MAX_DEPTH", "MAX_EVENT_BYTES", "MAX_STATE_BYTES", "read_bounded", "read_event",
           "read_json", "read_state"]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _depth(value: Any) -> int:
    """How deeply `value` nests (iteratively: a hostile depth cannot exhaust the stack here)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def _check_head(path: str, data: bytes, expect: Kind) -> None:
    """The top level is of the kind expected, judged on its first byte (a 50 MB list is refused unread)."""
    head = data.lstrip(b" \t\r\n")
    head = head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")[:1]
    kind = _KIND_OF_HEAD.get(head, "int or float" if head.isdigit() or head == b"-" else None)
    if expect == "object" and kind is not None and head != b"{":
        raise InputError(path, f"expected a JSON object, got {kind}")


def read_bounded(path: str, limit: int, what: str, expect: Kind = "any") -> bytes:
    """At most `limit` bytes of the regular file `path`; InputError for anything else (`what` names the limit).
    With `expect` "object", a document not starting with ``{`` is refused after its first chunk."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
            raise InputError(path, f"{kind}, not a regular file: give the path of a JSON file")
        too_large = f"more than the {limit:,} bytes {what}"
        if info.st_size > limit:
            raise InputError(path, f"{info.st_size:,} bytes, {too_large}")
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1024 * 1024))
            if not chunk:
                break
            if not chunks:
                _check_head(path, chunk, expect)
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise InputError(path, f"grew while read: {too_large}")
    return data


def read_json(path: str, limit: int, what: str, expect: Kind = "any") -> Any:
    """The JSON document in `path`, read with `read_bounded`; InputError names the file and what is wrong."""
    data = read_bounded(path, limit, what, expect)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text (byte {exc.start})") from None
    del data
    try:
        doc = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=refuse_duplicate_keys)
    except DuplicateKeyError as exc:
        raise InputError(path, str(exc)) from None
    except RecursionError:
        raise InputError(path, f"nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:
        raise InputError(path, f"not JSON: {exc}") from None
    if _depth(doc) > MAX_DEPTH:
        raise InputError(path, f"nested more than {MAX_DEPTH} levels deep")
    return doc


def read_event(path: str) -> Any:
    """EVENT.json: at most EventBridge's maximum event size (256 KiB), one JSON object."""
    return read_json(path, MAX_EVENT_BYTES, "EventBridge delivers in one event", expect="object")


def read_state(path: str) -> Any:
    """STATE.json: at most `MAX_STATE_BYTES` (a snapshot of 5,000 container instances and their tasks)."""
    return read_json(path, MAX_STATE_BYTES, "a snapshot of 5,000 container instances takes: replay the "
                     "instance in question from a snapshot trimmed to it", expect="object")
