"""How AWS errors read: the one place that knows which error codes mean 'slow down'."""

from __future__ import annotations

from botocore.exceptions import ClientError

THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException",
                              "RequestLimitExceeded"})

ATTRIBUTE_LIMIT_EXCEEDED = "AttributeLimitExceededException"  # ECS: 10 custom attributes per resource


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ClientError ('' if none)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_throttling(exc: ClientError) -> bool:
    """True when AWS asked us to slow down (after botocore's own retries gave up)."""
    return error_code(exc) in THROTTLING_CODES
