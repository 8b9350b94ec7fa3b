"""Handlers on simulated time: every AWS call a function makes costs API latency, and other events
interleave while it waits.

Each invocation runs on its own thread, used as a coroutine: exactly one thread runs at a time, and
control passes only at the points below, so a seed still gives one run. When a handler's call
reaches the wire (each attempt, before it is served), the invocation parks and the clock goes on
with everything else due in the meantime (other invocations, ECS's scheduler, deliveries); at
`now + latency` the call is served against the world as it is then, and the handler continues from
there. A handler's reads therefore see the world at the time of each call, its writes land at their
own time, and its clock (`now`) is the simulated clock. A client backing off from a throttle parks
the same way for its backoff.

The function's Timeout holds on that simulated duration: a call that would be served after
`start + Timeout` is not served; the invocation ends there with Lambda's "Task timed out" error
(what it did before stands, as on AWS), and the deployment treats it as any failed invocation
(asynchronous retries, the failure destination, a durable retry).

Not modelled: the handler's own CPU time (it costs no simulated time; the bench reports it
separately), latency split between request and response (the whole round trip is charged before the
call is served), and calls IAM denies (they fail at once, without a round trip).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sim.clock import Clock

READ_PREFIXES = ("Describe", "List", "Get", "Query", "Scan", "BatchGet")


@dataclass(frozen=True)
class ApiLatency:
    """The round trip of one AWS API call (seconds): lognormal, by whether the call reads or writes.

    Zero medians (the default) make calls instantaneous, as the simulator was before.
    """

    read_median_s: float = 0.0
    write_median_s: float = 0.0
    sigma: float = 0.5

    def __post_init__(self) -> None:
        """Reject impossible latencies early."""
        if self.read_median_s < 0 or self.write_median_s < 0 or self.sigma < 0:
            raise ValueError("API latency medians and sigma must be >= 0")

    def draw(self, rng: random.Random, operation: str) -> float:
        """One call's round trip."""
        median = self.read_median_s if operation.startswith(READ_PREFIXES) else self.write_median_s
        return 0.0 if median <= 0 else rng.lognormvariate(0.0, self.sigma) * median


# Per behaviour profile (sim.ecs.PROFILES). AWS publishes no API latency; these are our assumption of the
# range an SDK client in the same Region sees (sim/README.md, "Handlers take simulated time").
TYPICAL = ApiLatency(read_median_s=0.04, write_median_s=0.08, sigma=0.5)
SLOW = ApiLatency(read_median_s=0.15, write_median_s=0.3, sigma=0.8)
API_LATENCY: dict[str, ApiLatency] = {"as-documented": TYPICAL, "as-reported": TYPICAL, "worst": SLOW,
                                      "fast-cycle": TYPICAL, "grace": TYPICAL}


def api_latency(profile: str) -> ApiLatency:
    """The API latency of a behaviour profile (typical for a profile without its own)."""
    return API_LATENCY.get(profile, TYPICAL)


class HandlerKilled(BaseException):
    """Raised inside an invocation that Lambda ends (its Timeout passed, or the deployment closed).

    A BaseException, so that a handler's `except Exception` cannot swallow what Lambda does to it.
    """


@dataclass
class Outcome:
    """How an invocation ended: its result, or what it raised."""

    result: Any = None
    error: BaseException | None = None


Enter = Callable[[], Callable[[], None]]  # set up a slice of an invocation; returns how to undo it
Done = Callable[[Outcome], None]


class _Worker:
    def __init__(self, body: Callable[[], Any], done: Done, deadline: float | None, enter: Enter) -> None:
        self.body, self.done, self.deadline, self.enter = body, done, deadline, enter
        self.resume = threading.Semaphore(0)
        self.parked = threading.Semaphore(0)
        self.finished = False
        self.cancelled = False
        self.timed_out = False
        self.outcome = Outcome()
        self.undo: Callable[[], None] = lambda: None


class Workers:
    """Runs invocations as coroutines on the simulated clock (see the module docstring)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._local = threading.local()
        self._parked: list[_Worker] = []

    def start(self, body: Callable[[], Any], done: Done, *, deadline: float | None = None,
              enter: Enter = lambda: lambda: None) -> None:
        """Run `body` as a new invocation until it finishes or first waits; `done(outcome)` is called on the
        clock's thread when it finishes. `enter` sets up each slice it runs (and returns its undo).
        `deadline`: the simulated second after which its calls are no longer served (its Timeout)."""
        worker = _Worker(body, done, deadline, enter)
        threading.Thread(target=self._main, args=(worker,), daemon=True, name="sim-invocation").start()
        self._switch(worker)

    def sleep(self, seconds: float) -> bool:
        """Park the current invocation for `seconds` of simulated time; False outside an invocation."""
        worker: _Worker | None = getattr(self._local, "worker", None)
        if worker is None:
            return False
        if worker.cancelled or worker.timed_out:
            raise HandlerKilled("Task timed out" if worker.timed_out else "deployment closed")  # no call after that
        if seconds <= 0:
            return True
        wake = self.clock.now + seconds
        if worker.deadline is not None and wake > worker.deadline:
            wake, worker.timed_out = max(self.clock.now, worker.deadline), True
        self.clock.at(wake, lambda: self._switch(worker))
        self._park(worker)
        if worker.cancelled or worker.timed_out:
            raise HandlerKilled("Task timed out" if worker.timed_out else "deployment closed")
        return True

    def in_invocation(self) -> bool:
        """Whether the caller runs inside an invocation."""
        return getattr(self._local, "worker", None) is not None

    def close(self) -> None:
        """End every parked invocation (they raise HandlerKilled; their `done` is not called)."""
        for worker in list(self._parked):
            worker.cancelled = True
            self._switch(worker)

    # ---- control transfer: exactly one thread runs -------------------------------------------------
    def _switch(self, worker: _Worker) -> None:
        """Run `worker` until it parks or finishes (the caller waits)."""
        if worker.finished:
            return
        worker.resume.release()
        worker.parked.acquire()
        if worker.finished and not worker.cancelled:
            worker.done(worker.outcome)

    def _park(self, worker: _Worker) -> None:
        self._parked.append(worker)
        worker.undo()
        worker.parked.release()
        worker.resume.acquire()
        self._parked.remove(worker)
        worker.undo = worker.enter()

    def _main(self, worker: _Worker) -> None:
        worker.resume.acquire()
        self._local.worker = worker
        try:
            # Inside the try: a slice that cannot be set up is the invocation's outcome, never a thread that
            # ends without handing control back (the clock's thread would wait for it forever).
            worker.undo = worker.enter()
            worker.outcome = Outcome(result=worker.body())
        except BaseException as exc:  # everything the invocation raised is its outcome
            worker.outcome = Outcome(error=exc)
        finally:
            worker.undo()
            worker.finished = True
            worker.parked.release()


def charge_latency(client: Any, workers: Workers, latency: ApiLatency, rng: random.Random) -> Any:
    """Make each attempt `client` sends from inside an invocation cost a round trip of simulated time
    (before it is served: by sim.wire, or by moto for the state table); returns the client."""
    event_id = client.meta.service_model.service_id.hyphenize()

    def before_send(event_name: str = "", **_: Any) -> None:
        if workers.in_invocation():
            workers.sleep(latency.draw(rng, event_name.rsplit(".", 1)[-1]))

    client.meta.events.register_first(f"before-send.{event_id}", before_send, unique_id=f"sim-latency-{event_id}")
    return client
