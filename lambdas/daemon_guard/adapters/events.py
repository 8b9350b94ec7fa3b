"""The event-publisher port: the guard's own events (`core.guard_events`) to the default EventBridge bus."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from daemon_guard.core.guard_events import SOURCE, OwnEvent

MAX_ENTRIES = 10  # PutEvents takes at most 10 entries per call


def _entry(event: OwnEvent) -> dict[str, Any]:
    entry: dict[str, Any] = {"Source": SOURCE, "DetailType": event.detail_type,
                             "Detail": json.dumps(dict(event.detail), separators=(",", ":"))}
    if event.resources:
        entry["Resources"] = list(event.resources)
    return entry


class EventPublisher:
    """PutEvents on the default bus."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def publish(self, batch: Sequence[OwnEvent]) -> tuple[int, list[str]]:
        """Put one batch (at most `MAX_ENTRIES`); returns how many EventBridge rejected and their error codes."""
        if len(batch) > MAX_ENTRIES:
            raise ValueError(f"PutEvents takes at most {MAX_ENTRIES} entries, got {len(batch)}")
        response = self.client.put_events(Entries=[_entry(e) for e in batch])
        failed = int(response.get("FailedEntryCount", 0))
        return failed, sorted({str(r.get("ErrorCode")) for r in response.get("Entries", []) if r.get("ErrorCode")})
