"""The completion port: instances seen running every eligible daemon, remembered here and in the state table.

The intake skips replica events on such instances without reading ECS; this container's own memory
answers first, the state table (`CompletionCache`, shared by every container) next.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from daemon_guard.adapters.state import CompletionCache


class KnownComplete:
    """The completion cache with this container's memory in front of it."""

    def __init__(self, store: CompletionCache, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock
        self._seen: set[str] = set()

    def known(self, instance_arn: str) -> bool:
        """Seen running every eligible daemon, here or (through the state table) by another container."""
        if instance_arn in self._seen:
            return True
        if self._store.is_complete(instance_arn):
            self._seen.add(instance_arn)
            return True
        return False

    def remember(self, instance_arns: Sequence[str]) -> None:
        """Note that the instances run every eligible daemon (written once per container and instance)."""
        new = [arn for arn in dict.fromkeys(instance_arns) if arn not in self._seen]
        if new:
            self._store.mark_complete(new, self._clock())
            self._seen.update(new)

    def forget(self, instance_arn: str, *, certain: bool = False) -> None:
        """The instance may be missing a daemon (certain: a daemon stopped on it)."""
        known = instance_arn in self._seen
        self._seen.discard(instance_arn)
        if known or certain:
            self._store.clear_complete(instance_arn)
