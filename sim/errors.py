"""Errors the simulated control plane raises; the wire layer turns them into real AWS error responses.

A backend raises `SimApiError(code, message, status)`; `sim.wire` serialises it in the service's
protocol (JSON `__type`, rest-json `x-amzn-ErrorType`, query `<ErrorResponse>`) so that botocore
raises the same `ClientError` (and applies the same retry rules) as against AWS.
"""

from __future__ import annotations


class SimApiError(Exception):
    """An AWS API error: `code` (e.g. "ThrottlingException"), `message`, HTTP `status`.

    Typical values: ("ThrottlingException", "Rate exceeded", 400), ("ClientException", ..., 400),
    ("ServerException", ..., 500), ("InvalidParameterException", ..., 400),
    ("ValidationError", ..., 400) for Auto Scaling.
    """

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r}, {self.status!r})"


class UnsupportedOperation(SimApiError):
    """The simulator does not model this operation (a gap in the proving ground, not an AWS error)."""

    def __init__(self, service: str, operation: str) -> None:
        # 501 is not in botocore's retryable status set, so a gap fails fast instead of retrying.
        super().__init__("UnsupportedOperation", f"simulator does not model {service}:{operation}", 501)
        self.service = service
        self.operation = operation
