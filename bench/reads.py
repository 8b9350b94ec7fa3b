"""The account's ECS reads over a story, sampled every simulated second from the simulator's call log.

ECS reads are every Describe, List and Get call that reached the simulated ECS (retries count again), from
every caller in the world. The account's cluster-read bucket refills 20 a second (burst 100): the figures
are given per second and per minute, and the busiest 10-second window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

from sim.world import World

READ_PREFIXES = ("Describe", "List", "Get")
READ_REFILL_PER_S = 20.0  # ECS's cluster-read bucket: 100 burst, 20/s
PEAK_WINDOW_S = 10


def ecs_reads(world: World) -> int:
    """ECS read calls (Describe*, List*, Get*) that reached the simulator so far."""
    return sum(n for (service, op), n in world.call_log.calls.items()
               if service == "ecs" and op.startswith(READ_PREFIXES))


def ecs_throttles(world: World) -> int:
    """ECS calls the simulator answered with a throttling error so far."""
    return sum(n for (service, _op, code), n in world.call_log.errors.items()
               if service == "ecs" and "Throttl" in code)


@dataclass
class ReadSampler:
    """The running count of ECS reads, taken once a simulated second from `start` while `until` allows."""

    world: World
    samples: list[tuple[float, int]] = field(default_factory=list)

    def start(self, until: float) -> None:
        """Sample now and every second after, up to `until` (simulated seconds)."""
        clock = self.world.clock

        def sample() -> None:
            self.samples.append((clock.now, ecs_reads(self.world)))
            if clock.now + 1.0 <= until:
                clock.at(clock.now + 1.0, sample)
        clock.at(clock.now, sample)

    def between(self, begin: float, end: float) -> list[int]:
        """The samples' counts taken from `begin` to `end` (inclusive)."""
        return [n for at, n in self.samples if begin <= at <= end]

    def rates(self, begin: float = 0.0, end: float = float("inf")) -> ReadRates:
        """Mean reads per second from `begin` to `end`, and the busiest 10 s window within."""
        counts = self.between(begin, end)
        per_s = [b - a for a, b in pairwise(counts)]
        windows = [sum(per_s[i:i + PEAK_WINDOW_S]) for i in range(max(1, len(per_s) - PEAK_WINDOW_S + 1))]
        seconds = len(per_s)
        return ReadRates(reads=sum(per_s), seconds=seconds,
                         peak_per_s=max(windows, default=0) / PEAK_WINDOW_S)


@dataclass(frozen=True)
class ReadRates:
    """ECS reads over `seconds` simulated seconds, and the busiest 10 s window's reads per second."""

    reads: int
    seconds: int
    peak_per_s: float

    @property
    def per_s(self) -> float:
        """Mean reads per second."""
        return self.reads / self.seconds if self.seconds else 0.0

    @property
    def per_min(self) -> float:
        """Mean reads per minute."""
        return self.per_s * 60

    @property
    def share_of_refill(self) -> float:
        """Mean reads per second over the account's read refill (20 a second)."""
        return self.per_s / READ_REFILL_PER_S
