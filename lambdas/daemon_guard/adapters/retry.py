"""The deadline retry at the edge: a botocore ``needs-retry`` handler that retries a client's failed calls for as
long as the invocation has time (`core.retry.next_wait`), in place of botocore's fixed attempt count.

Wiring (why it works with adaptive mode): the client is built with botocore's ``total_max_attempts`` of 1
(`bootstrap.client_configs`), so botocore's own retry handler never retries and never sleeps; adaptive mode's
client-side rate limiter stays (it still slows the client before each send, and records each response on
``needs-retry``). This handler is registered last on ``needs-retry``, so the limiter has recorded the throttle
before it decides; botocore's endpoint retries on a non-None answer other than False. The retryable errors are
botocore's standard ones (throttles, transient errors, 5xx), read with botocore's own checkers. The wait is
slept here through the runtime's `sleep` (simulated time in the proving ground) and 0 returned to the endpoint;
giving up returns False, which ends botocore's retries, and the call raises (as `Throttled` after
`adapters.errors` translates it). The time left comes from `InvocationDeadline`, which the entry point sets for
each invocation from the Lambda context.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore.retries import standard

from daemon_guard.core.retry import RetryBudget, TimeLeft, next_wait, unlimited

# botocore's standard retry conditions without its attempt count (the budget counts attempts).
_NO_ATTEMPT_LIMIT = 1_000_000


class InvocationDeadline:
    """The time left of the invocation a container is serving: `unlimited` between invocations and outside Lambda,
    the Lambda context's inside one (`during`)."""

    def __init__(self) -> None:
        self._time_left: TimeLeft = unlimited

    def __call__(self) -> float:
        """Seconds left of the current invocation."""
        return self._time_left()

    @contextmanager
    def during(self, time_left: TimeLeft) -> Iterator[None]:
        """Within the block, the time left is `time_left()` (the entry point's, from its context)."""
        previous, self._time_left = self._time_left, time_left
        try:
            yield
        finally:
            self._time_left = previous


class DeadlineRetry:
    """Retries a botocore client's failed calls within `budget` and the deadline (see the module docstring);
    counts the calls it gave up on (`gave_up`) and the seconds it waited (`waited_s`)."""

    def __init__(self, budget: RetryBudget, deadline: Callable[[], float], sleep: Callable[[float], None],
                 draw: Callable[[], float] = random.random) -> None:
        self.budget, self._deadline, self._sleep, self._draw = budget, deadline, sleep, draw
        self._adapter = standard.RetryEventAdapter()
        self._retryable = standard.StandardRetryConditions(max_attempts=_NO_ATTEMPT_LIMIT)
        self._throttling = standard.ThrottlingErrorDetector(self._adapter)
        self.gave_up = 0
        self.waited_s = 0.0

    def install(self, client: Any) -> None:
        """Hook `client` (a botocore client, or one wrapped by `adapters.errors.translating`); a client without
        botocore's events (a test's fake) is left as it is."""
        events = getattr(getattr(client, "meta", None), "events", None)
        if events is not None:
            events.register_last("needs-retry", self.needs_retry, unique_id="daemon-guard-deadline-retry")

    def needs_retry(self, **kwargs: Any) -> float | bool | None:
        """botocore's ``needs-retry`` handler: None for a success or an error not worth retrying, 0 after waiting
        for the next attempt, False to give up."""
        context = self._adapter.create_retry_context(**kwargs)
        if not self._retryable.is_retryable(context):
            return None
        wait = next_wait(self.budget, context.attempt_number, self._throttling.is_throttling_error_from_context(
            context), self._deadline(), self._draw())
        if wait is None:
            self.gave_up += 1
            return False
        self._sleep(wait)
        self.waited_s += wait
        return 0.0
