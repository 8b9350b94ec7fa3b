"""The wire between unmodified boto3 clients and the in-process simulator.

botocore does the real work on both sides: it validates and serialises every request exactly as it
would for AWS, and parses every response (and error) exactly as it would from AWS. In between, a
`before-send` hook on the client decodes the outgoing HTTP request back into the operation's input
structure (by protocol, driven by botocore's own service model), hands it to a `Backend`, and
encodes the backend's answer as the HTTP response AWS would send:

- `json` (ECS): `X-Amz-Target` header + JSON body; JSON response, timestamps as epoch seconds.
- `query` (Auto Scaling): form-encoded body (`member.N` lists, nested structures); XML response
  inside `<OpResponse><OpResult>` with `<member>` lists and ISO 8601 timestamps.
- `rest-json` (Lambda): URI labels, query string, headers and payload; status-code, header and
  payload members in the response (e.g. Invoke's `Payload`, `StatusCode`, `X-Amz-Function-Error`).

A `SimApiError` from the backend becomes the protocol's error response, so botocore raises the
same `ClientError` and applies the same retry rules as against AWS. Nothing is ever sent on the
network: clients point at `https://{service}.sim.invalid`.

Encoders and decoders walk botocore shapes (structure/list/map/scalar); nothing is per operation.
Service models come from one shared botocore session and are loaded once per process.
"""

from __future__ import annotations

import base64
import calendar
import email.utils
import io
import itertools
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any, Protocol, cast
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit
from xml.sax.saxutils import escape

import boto3.session
import botocore.session
from botocore import UNSIGNED
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.client import BaseClient
from botocore.config import Config
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape
from botocore.retries import adaptive, bucket, standard, throttling
from botocore.utils import parse_timestamp

from sim.errors import SimApiError

__all__ = [
    "Backend",
    "CallLog",
    "RateClock",
    "ValidatingBackend",
    "attach",
    "make_client",
    "validate_output",
]

_QUERY_XMLNS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"
_DEFAULT_RETRIES: dict[str, Any] = {"mode": "standard", "total_max_attempts": 1}


class Backend(Protocol):
    """The simulated control plane as the wire sees it.

    `service` is botocore's service name ("ecs", "autoscaling", "lambda"), `operation` the botocore
    operation name ("ListTasks"), `params` the operation's input as a boto3 user passes it
    (timestamps as aware `datetime`, blobs as `bytes`). Returns the output structure in the same
    form (as boto3 would return it, without `ResponseMetadata`); raises `SimApiError`.
    """

    def call(self, service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Perform one API call."""
        ...


class CallLog:
    """Counts API calls that reached the simulator, per (service, operation); retries count again.

    One log may be shared by several clients (pass it to `make_client`/`attach`), e.g. to report
    `api_calls_per_*` in benchmarks. Error responses are also counted per code in `errors`.
    """

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.errors: Counter[tuple[str, str, str]] = Counter()
        self._lock = threading.Lock()
        self._here = threading.local()

    def record(self, service: str, operation: str, error_code: str | None = None) -> None:
        """Count one call (and its error code, if it failed)."""
        self._here.n = getattr(self._here, "n", 0) + 1
        with self._lock:
            self.calls[(service, operation)] += 1
            if error_code is not None:
                self.errors[(service, operation, error_code)] += 1

    def count(self, service: str | None = None, operation: str | None = None) -> int:
        """Calls matching `service` and `operation` (None matches any)."""
        with self._lock:
            return sum(
                n
                for (svc, op), n in self.calls.items()
                if (service is None or svc == service) and (operation is None or op == operation)
            )

    def count_here(self) -> int:
        """Calls made so far from the calling thread (an invocation runs on its own: sim.latency)."""
        return int(getattr(self._here, "n", 0))

    def error_count(self, code: str | None = None, service: str | None = None) -> int:
        """Error responses matching `code` and `service` (None matches any)."""
        with self._lock:
            return sum(
                n
                for (svc, _op, c), n in self.errors.items()
                if (code is None or c == code) and (service is None or svc == service)
            )

    def reset(self) -> None:
        """Forget all counts."""
        with self._lock:
            self.calls.clear()
            self.errors.clear()


class ValidatingBackend:
    """Wraps a backend and asserts every successful response matches the operation's output shape."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner

    def call(self, service: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Delegate, then raise AssertionError listing every problem `validate_output` finds."""
        result = self.inner.call(service, operation, params)
        problems = validate_output(service, operation, result)
        if problems:
            raise AssertionError(
                f"{service}:{operation} response does not match botocore's output shape:\n  "
                + "\n  ".join(problems)
            )
        return result


# --------------------------------------------------------------------------- models (cached)


@cache
def _botocore_session() -> botocore.session.Session:
    return botocore.session.get_session()


@cache
def _boto3_session() -> boto3.session.Session:
    return boto3.session.Session(botocore_session=_botocore_session())


@cache
def _service_model(service: str) -> ServiceModel:
    return _botocore_session().get_service_model(service)


_MEMBER_INDEX: dict[int, tuple[StructureShape, dict[str, tuple[str, Shape]]]] = {}


def _wire_members(shape: StructureShape) -> dict[str, tuple[str, Shape]]:
    """Wire name -> (member name, member shape); cached per shape object (kept alive by the cache)."""
    entry = _MEMBER_INDEX.get(id(shape))
    if entry is None or entry[0] is not shape:
        index = {m.serialization.get("name", name): (name, m) for name, m in shape.members.items()}
        entry = (shape, index)
        _MEMBER_INDEX[id(shape)] = entry
    return entry[1]


# --------------------------------------------------------------------------- public entry points


def make_client(
    service: str,
    backend: Backend,
    region: str = "us-east-1",
    retries: dict[str, Any] | None = None,
    *,
    call_log: CallLog | None = None,
    backoff: Callable[[float], None] | None = None,
    config: Config | None = None,
    rate_clock: RateClock | None = None,
) -> Any:
    """A real boto3 client for `service` whose every call is answered by `backend`.

    Dummy credentials; endpoint `https://{service}.sim.invalid` (never reached). `retries` is
    botocore's retry config; the default is one attempt, no retries. Note botocore's meaning of
    `max_attempts` there: *retries*, so `{"max_attempts": 1}` is two attempts in total; use
    `total_max_attempts` for attempts. `config` instead: the client's whole botocore Config (retries,
    timeouts) as production builds it (`daemon_guard.bootstrap.client_configs`). See `attach` for
    `call_log`, `backoff` and `rate_clock`.
    """
    if config is not None and retries is not None:
        raise ValueError("make_client takes retries= or config=, not both")
    if config is None:
        config = Config(retries=cast(Any, dict(retries) if retries else dict(_DEFAULT_RETRIES)))
    # Unsigned: nothing checks a SigV4 signature here (IAM is `sim.iam`, on the request's parameters),
    # and signing is a tenth of a simulated call's cost.
    config = config.merge(Config(signature_version=UNSIGNED))
    client = _boto3_session().client(
        service,  # type: ignore[call-overload]
        region_name=region,
        endpoint_url=f"https://{service}.sim.invalid",
        aws_access_key_id="sim",
        aws_secret_access_key="sim",
        config=config,
    )
    attach(client, backend, call_log=call_log, backoff=backoff, rate_clock=rate_clock)
    return client


class RateClock(Protocol):
    """The time adaptive mode's client-side rate limiter reads and waits on (botocore's `bucket.Clock`)."""

    def current_time(self) -> float:
        """Seconds (the caller's time)."""
        ...

    def sleep(self, amount: float) -> None:
        """Wait `amount` seconds of the caller's time."""
        ...


def attach(
    client: BaseClient,
    backend: Backend,
    *,
    call_log: CallLog | None = None,
    backoff: Callable[[float], None] | None = None,
    rate_clock: RateClock | None = None,
) -> None:
    """Answer every request `client` sends from `backend` instead of the network.

    `call_log` counts each attempt that reaches the backend. `backoff`, if given, receives the
    delay botocore's standard/adaptive retry handler chose before a retry, instead of botocore
    sleeping in real time (let the simulated clock advance by it). An adaptive-mode client needs
    `rate_clock`: its client-side rate limiter (botocore's own) is rebuilt on that clock and runs
    before each request is answered (see `_limit_rate_on`).
    """
    service_model = client.meta.service_model
    event_id = service_model.service_id.hyphenize()
    retries: dict[str, Any] = getattr(client.meta.config, "retries", None) or {}
    if retries.get("mode") == "adaptive":
        if rate_clock is None:
            raise ValueError("an adaptive-mode client needs rate_clock= (its rate limiter would wait in real time)")
        _limit_rate_on(client, event_id, rate_clock)
    handler = _SendHandler(service_model.service_name, backend, call_log)
    client.meta.events.register(
        f"before-send.{event_id}", cast("Callable[..., None]", handler), unique_id=f"sim-wire-{event_id}"
    )
    if backoff is not None:
        _route_backoff(client, event_id, backoff)


def validate_output(
    service: str, operation: str, response: Mapping[str, Any], *, check_required: bool = True
) -> list[str]:
    """Problems with `response` as `operation`'s output (empty list when it is valid).

    Checks member names, Python types per shape type (string, integer/long, float/double, boolean,
    timestamp = datetime, blob = bytes, list, map, structure), enum values, and (unless
    `check_required` is False) members the model marks required.
    """
    op = _service_model(service).operation_model(operation)
    problems: list[str] = []
    shape = op.output_shape
    if shape is None:
        if response:
            problems.append(f"{operation}: operation has no output, got members {sorted(response)}")
        return problems
    _validate(shape, response, operation, problems, check_required)
    return problems


# --------------------------------------------------------------------------- the send hook


class _RawBody(io.BytesIO):
    """What AWSResponse/StreamingBody expect of urllib3's raw response: read() and stream()."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        data = self.read()
        if data:
            yield data


class _SendHandler:
    def __init__(self, service: str, backend: Backend, call_log: CallLog | None) -> None:
        self.service = service
        self.model = _service_model(service)
        self.protocol = self.model.protocol
        self.backend = backend
        self.call_log = call_log
        self._request_ids = itertools.count(1)
        self._target_prefix = self.model.metadata.get("targetPrefix", "")
        self._xmlns = self.model.metadata.get("xmlNamespace", _QUERY_XMLNS)

    def __call__(self, request: AWSPreparedRequest, event_name: str = "", **_: Any) -> AWSResponse:
        body = _body_bytes(request.body)
        headers = {str(k).lower(): _text(v) for k, v in request.headers.items()}
        op = self.model.operation_model(self._operation_name(event_name, headers, body))
        if self.protocol == "json":
            params = _decode_json_body(op.input_shape, body)
        elif self.protocol == "query":
            params = _decode_query(op.input_shape, body)
        elif self.protocol == "rest-json":
            params = _decode_rest_json(op, request.url, headers, body)
        else:  # pragma: no cover - the simulator only fronts ECS, Auto Scaling and Lambda
            raise NotImplementedError(f"sim.wire does not speak the {self.protocol} protocol")
        request_id = f"00000000-0000-4000-8000-{next(self._request_ids):012d}"
        try:
            result = self.backend.call(self.service, op.name, params)
        except SimApiError as err:
            if self.call_log is not None:
                self.call_log.record(self.service, op.name, err.code)
            return self._error(request.url, err, request_id)
        if self.call_log is not None:
            self.call_log.record(self.service, op.name)
        if self.protocol == "query":
            return self._query_response(request.url, op, result, request_id)
        if self.protocol == "json":
            out = _to_json(op.output_shape, result) if op.output_shape is not None else {}
            return _response(request.url, 200, self._json_headers(request_id), json.dumps(out).encode())
        return _rest_json_response(request.url, op, result, self._json_headers(request_id))

    def _operation_name(self, event_name: str, headers: Mapping[str, str], body: bytes) -> str:
        parts = event_name.split(".")
        if len(parts) >= 3 and parts[0] == "before-send":
            return parts[-1]
        if self.protocol == "json" and "x-amz-target" in headers:
            return headers["x-amz-target"].rsplit(".", 1)[-1]
        if self.protocol == "query":
            action = dict(parse_qsl(body.decode())).get("Action")
            if action:
                return action
        raise ValueError(f"sim.wire cannot tell the operation of a {self.service} request ({event_name!r})")

    def _json_headers(self, request_id: str) -> dict[str, str]:
        content_type = "application/x-amz-json-1.1" if self.protocol == "json" else "application/json"
        return {"x-amzn-RequestId": request_id, "Content-Type": content_type}

    def _query_response(
        self, url: str, op: OperationModel, result: Mapping[str, Any], request_id: str
    ) -> AWSResponse:
        shape = op.output_shape
        inner = ""
        if shape is not None:
            members = _xml_members(shape, result)
            wrapper = shape.serialization.get("resultWrapper", f"{op.name}Result")
            inner = f"<{wrapper}>{members}</{wrapper}>"
        xml = (
            f'<{op.name}Response xmlns="{self._xmlns}">{inner}'
            f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
            f"</{op.name}Response>"
        )
        return _response(url, 200, {"x-amzn-RequestId": request_id, "Content-Type": "text/xml"}, xml.encode())

    def _error(self, url: str, err: SimApiError, request_id: str) -> AWSResponse:
        if self.protocol == "query":
            kind = "Receiver" if err.status >= 500 else "Sender"
            xml = (
                f'<ErrorResponse xmlns="{self._xmlns}"><Error><Type>{kind}</Type>'
                f"<Code>{escape(err.code)}</Code><Message>{escape(err.message)}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>"
            )
            headers = {"x-amzn-RequestId": request_id, "Content-Type": "text/xml"}
            return _response(url, err.status, headers, xml.encode())
        headers = self._json_headers(request_id)
        if self.protocol == "rest-json":
            headers["x-amzn-ErrorType"] = err.code
        body = json.dumps({"__type": err.code, "message": err.message}).encode()
        return _response(url, err.status, headers, body)


def _response(url: str, status: int, headers: dict[str, str], body: bytes) -> AWSResponse:
    headers["Content-Length"] = str(len(body))
    return AWSResponse(url, status, cast(Any, headers), _RawBody(body))


_MIN_RATE_WAIT_S = 0.001


class _ClockCondition:
    """The token bucket's condition variable on a `RateClock`: `wait(timeout)` releases the bucket's lock and
    waits `timeout` of the clock's time (botocore waits on a real-time `threading.Condition`)."""

    def __init__(self, lock: Any, clock: RateClock) -> None:
        self._lock, self._clock = lock, clock

    def __enter__(self) -> bool:
        return bool(self._lock.acquire())

    def __exit__(self, *_: object) -> None:
        self._lock.release()

    def wait(self, timeout: float | None = None) -> bool:
        # Nothing else notifies: a client's calls come from the one invocation its execution environment runs.
        self._lock.release()
        try:
            # At least a millisecond: the bucket's refill after a wait of exactly its shortfall can fall short by a
            # rounding error, and a wait too small to move a simulated clock at thousands of seconds would loop.
            self._clock.sleep(max(float(timeout or 0.0), _MIN_RATE_WAIT_S))
        finally:
            self._lock.acquire()
        return False

    def notify(self, n: int = 1) -> None:
        """A new fill rate: the waiter recomputes its wait when it wakes."""


def _limit_rate_on(client: BaseClient, event_id: str, clock: RateClock) -> None:
    """Replace adaptive mode's client-side rate limiter with botocore's own classes on `clock`.

    botocore builds it on a real-time `bucket.Clock` and registers it on the generic `before-send` and
    `needs-retry` events, where the wire's more specific `before-send.<service>` handler answers first and
    the token bucket would never be asked. The limiter here is built as `adaptive.register_retry_handler`
    builds it, and registered first on this service's events: a token is taken before the request is
    answered, and each response is recorded before the retry handler backs off, as in botocore's endpoint.
    """
    events = client.meta.events
    for event in ("before-send", "needs-retry"):
        for registered in list(events._emitter._handlers.prefix_search(f"{event}.{event_id}")):  # type: ignore[attr-defined]
            if isinstance(getattr(registered, "__self__", None), adaptive.ClientRateLimiter):
                events.unregister(event, registered)
    token_bucket = bucket.TokenBucket(max_rate=1, clock=cast("bucket.Clock", clock))
    # The seam: botocore's bucket waits on this condition between refills (its clock's sleep is never used).
    setattr(token_bucket, "_new_fill_rate_condition", _ClockCondition(getattr(token_bucket, "_lock"), clock))  # noqa: B009, B010
    limiter = adaptive.ClientRateLimiter(
        rate_adjustor=throttling.CubicCalculator(starting_max_rate=0, start_time=clock.current_time()),
        rate_clocker=adaptive.RateClocker(clock),
        token_bucket=token_bucket,
        throttling_detector=standard.ThrottlingErrorDetector(retry_event_adapter=standard.RetryEventAdapter()),
        clock=clock,
    )
    client.meta.events.register_first(f"before-send.{event_id}", limiter.on_sending_request,
                                      unique_id=f"sim-rate-limiter-send-{event_id}")
    client.meta.events.register_first(f"needs-retry.{event_id}", limiter.on_receiving_response,
                                      unique_id=f"sim-rate-limiter-response-{event_id}")


def _route_backoff(client: BaseClient, event_id: str, backoff: Callable[[float], None]) -> None:
    """Re-register botocore's standard retry handler so its delay goes to `backoff`, not time.sleep."""
    retries: dict[str, Any] = getattr(client.meta.config, "retries", None) or {}
    mode = retries.get("mode")
    if mode not in ("standard", "adaptive"):
        raise ValueError(f"backoff= needs retry mode 'standard' or 'adaptive', not {mode!r}")
    event = f"needs-retry.{event_id}"
    unique_id = f"retry-config-{event_id}"
    client.meta.events.unregister(event, unique_id=unique_id)
    handler = standard.register_retry_handler(client, max_attempts=retries.get("total_max_attempts"))
    client.meta.events.unregister(event, unique_id=unique_id)

    def needs_retry(**kwargs: Any) -> float | None:
        delay = handler.needs_retry(**kwargs)
        if delay is None:
            return None
        backoff(float(delay))
        return 0.0

    client.meta.events.register(event, cast("Callable[..., None]", needs_retry), unique_id=unique_id)


# --------------------------------------------------------------------------- scalars


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


def _body_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    if hasattr(body, "read"):
        data = body.read()
        if hasattr(body, "seek"):
            body.seek(0)
        return data.encode() if isinstance(data, str) else bytes(data)
    return bytes(body)


def _parse_time(value: Any) -> datetime:
    parsed: datetime = parse_timestamp(value)
    return parsed.astimezone(UTC)


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return calendar.timegm(_as_utc(value).timetuple()) + value.microsecond / 1e6
    if isinstance(value, int | float):
        return float(value)
    return _epoch(_parse_time(value))


def _iso8601(value: Any) -> str:
    moment = _as_utc(value) if isinstance(value, datetime) else _parse_time(value)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _scalar_from_text(shape: Shape, text: str) -> Any:
    kind = shape.type_name
    if kind in ("integer", "long"):
        return int(text)
    if kind in ("float", "double"):
        return float(text)
    if kind == "boolean":
        return text.lower() == "true"
    if kind == "timestamp":
        return _parse_time(text)
    if kind == "blob":
        return base64.b64decode(text)
    return text


def _scalar_to_text(shape: Shape, value: Any, timestamp_format: str = "iso8601") -> str:
    kind = shape.type_name
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "timestamp":
        fmt = shape.serialization.get("timestampFormat", timestamp_format)
        if fmt == "unixTimestamp":
            return str(int(_epoch(value)))
        if fmt == "rfc822":
            return email.utils.formatdate(_epoch(value), usegmt=True)
        return _iso8601(value)
    if kind == "blob":
        raw = value.encode() if isinstance(value, str) else bytes(value)
        return base64.b64encode(raw).decode()
    return str(value)


# --------------------------------------------------------------------------- json (and rest-json bodies)


def _decode_json_body(shape: Shape | None, body: bytes) -> dict[str, Any]:
    if shape is None or not body.strip():
        return {}
    decoded = _from_json(shape, json.loads(body))
    return decoded if isinstance(decoded, dict) else {}


def _from_json(shape: Shape, value: Any) -> Any:
    kind = shape.type_name
    if value is None:
        return None
    if kind == "structure" and isinstance(shape, StructureShape):
        if shape.is_document_type:
            return value
        members = _wire_members(shape)
        out: dict[str, Any] = {}
        for key, item in value.items():
            found = members.get(key)
            if found is not None:
                out[found[0]] = _from_json(found[1], item)
        return out
    if kind == "list" and isinstance(shape, ListShape):
        return [_from_json(shape.member, item) for item in value]
    if kind == "map" and isinstance(shape, MapShape):
        return {key: _from_json(shape.value, item) for key, item in value.items()}
    if kind == "timestamp":
        return _parse_time(value)
    if kind == "blob":
        return base64.b64decode(value)
    return value


def _to_json(shape: Shape, value: Any) -> Any:
    kind = shape.type_name
    if kind == "structure" and isinstance(shape, StructureShape):
        if shape.is_document_type:
            return value
        out: dict[str, Any] = {}
        members = shape.members
        for name, item in value.items():
            member = members.get(name)
            if member is None or item is None or member.serialization.get("location"):
                continue
            out[member.serialization.get("name", name)] = _to_json(member, item)
        return out
    if kind == "list" and isinstance(shape, ListShape):
        return [_to_json(shape.member, item) for item in value]
    if kind == "map" and isinstance(shape, MapShape):
        return {str(key): _to_json(shape.value, item) for key, item in value.items()}
    if kind == "timestamp":
        return _epoch(value)
    if kind == "blob":
        raw = value.encode() if isinstance(value, str) else bytes(value)
        return base64.b64encode(raw).decode()
    return value


# --------------------------------------------------------------------------- query (form in, XML out)


def _decode_query(shape: Shape | None, body: bytes) -> dict[str, Any]:
    if shape is None:
        return {}
    flat = dict(parse_qsl(body.decode(), keep_blank_values=True))
    flat.pop("Action", None)
    flat.pop("Version", None)
    prefixes: set[str] = set()
    for key in flat:
        parts = key.split(".")
        prefixes.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    decoded = _from_query(shape, flat, prefixes, "")
    return decoded if isinstance(decoded, dict) else {}


def _from_query(shape: Shape, flat: dict[str, str], prefixes: set[str], prefix: str) -> Any:
    kind = shape.type_name
    if kind == "structure" and isinstance(shape, StructureShape):
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            wire = member.serialization.get("name", name)
            key = f"{prefix}.{wire}" if prefix else wire
            if key in prefixes:
                out[name] = _from_query(member, flat, prefixes, key)
        return out
    if kind == "list" and isinstance(shape, ListShape):
        if flat.get(prefix) == "":
            return []
        if shape.serialization.get("flattened"):
            item_prefix = prefix
            if shape.member.serialization.get("name"):
                item_prefix = ".".join([*prefix.split(".")[:-1], shape.member.serialization["name"]])
        else:
            item_prefix = f"{prefix}.{shape.member.serialization.get('name', 'member')}"
        items: list[Any] = []
        for index in itertools.count(1):
            key = f"{item_prefix}.{index}"
            if key not in prefixes:
                break
            items.append(_from_query(shape.member, flat, prefixes, key))
        return items
    if kind == "map" and isinstance(shape, MapShape):
        entry_prefix = prefix if shape.serialization.get("flattened") else f"{prefix}.entry"
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        mapping: dict[str, Any] = {}
        for index in itertools.count(1):
            key = f"{entry_prefix}.{index}"
            if key not in prefixes:
                break
            map_key = _from_query(shape.key, flat, prefixes, f"{key}.{key_name}")
            mapping[map_key] = _from_query(shape.value, flat, prefixes, f"{key}.{value_name}")
        return mapping
    return _scalar_from_text(shape, flat.get(prefix, ""))


def _xml_members(shape: StructureShape, value: Mapping[str, Any]) -> str:
    parts: list[str] = []
    members = shape.members
    for name, item in value.items():
        member = members.get(name)
        if member is None or item is None:
            continue
        wire = member.serialization.get("name", name)
        if isinstance(member, ListShape) and member.serialization.get("flattened"):
            parts.extend(_to_xml(member.member, element, wire) for element in item)
        else:
            parts.append(_to_xml(member, item, wire))
    return "".join(parts)


def _to_xml(shape: Shape, value: Any, tag: str) -> str:
    kind = shape.type_name
    if kind == "structure" and isinstance(shape, StructureShape):
        return f"<{tag}>{_xml_members(shape, value)}</{tag}>"
    if kind == "list" and isinstance(shape, ListShape):
        item_tag = shape.member.serialization.get("name", "member")
        return f"<{tag}>{''.join(_to_xml(shape.member, item, item_tag) for item in value)}</{tag}>"
    if kind == "map" and isinstance(shape, MapShape):
        key_tag = shape.key.serialization.get("name", "key")
        value_tag = shape.value.serialization.get("name", "value")
        entries = "".join(
            f"<entry>{_to_xml(shape.key, k, key_tag)}{_to_xml(shape.value, v, value_tag)}</entry>"
            for k, v in value.items()
        )
        return f"<{tag}>{entries}</{tag}>"
    return f"<{tag}>{escape(_scalar_to_text(shape, value))}</{tag}>"


# --------------------------------------------------------------------------- rest-json


_LABEL = re.compile(r"\{([^}+]+)(\+?)\}")


@cache
def _uri_pattern(service: str, operation: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """A regex for the operation's requestUri path and the label names of its groups."""
    uri = str(_service_model(service).operation_model(operation).http["requestUri"])
    path = uri.split("?", 1)[0]
    labels: list[str] = []
    pattern = ""
    position = 0
    for match in _LABEL.finditer(path):
        pattern += re.escape(path[position : match.start()])
        labels.append(match.group(1))
        pattern += f"(?P<g{len(labels)}>.+)" if match.group(2) else f"(?P<g{len(labels)}>[^/]+)"
        position = match.end()
    pattern += re.escape(path[position:])
    return re.compile(f"^{pattern}$"), tuple(labels)


def _decode_rest_json(
    op: OperationModel, url: str, headers: Mapping[str, str], body: bytes
) -> dict[str, Any]:
    shape = op.input_shape
    if shape is None:
        return {}
    parts = urlsplit(url)
    regex, labels = _uri_pattern(op.service_model.service_name, op.name)
    match = regex.match(parts.path)
    path_values = {label: unquote(match.group(f"g{i}")) for i, label in enumerate(labels, 1)} if match else {}
    query = parse_qs(parts.query, keep_blank_values=True)
    params: dict[str, Any] = {}
    body_members = False
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if location == "uri":
            if wire in path_values:
                params[name] = _scalar_from_text(member, path_values[wire])
        elif location == "querystring":
            if isinstance(member, ListShape):
                if wire in query:
                    params[name] = [_scalar_from_text(member.member, v) for v in query[wire]]
            elif isinstance(member, MapShape):
                params[name] = {k: v[0] for k, v in query.items()}
            elif wire in query:
                params[name] = _scalar_from_text(member, query[wire][0])
        elif location == "header":
            if wire.lower() in headers:
                params[name] = _header_value(member, headers[wire.lower()])
        elif location == "headers":
            header_prefix = wire.lower()
            found = {k[len(header_prefix) :]: v for k, v in headers.items() if k.startswith(header_prefix)}
            if found:
                params[name] = found
        else:
            body_members = True
    payload = shape.serialization.get("payload")
    if payload is not None:
        member = shape.members[payload]
        if body:
            if member.type_name == "blob":
                params[payload] = body
            elif member.type_name == "string":
                params[payload] = body.decode()
            else:
                params[payload] = _from_json(member, json.loads(body))
    elif body_members:
        params.update(_decode_json_body(shape, body))
    return params


def _header_value(shape: Shape, text: str) -> Any:
    if shape.serialization.get("jsonvalue"):
        return json.loads(base64.b64decode(text))
    if isinstance(shape, ListShape):
        return [_scalar_from_text(shape.member, part.strip()) for part in text.split(",")]
    return _scalar_from_text(shape, text)


def _rest_json_response(
    url: str, op: OperationModel, result: Mapping[str, Any], headers: dict[str, str]
) -> AWSResponse:
    status = int(op.http.get("responseCode", 200))
    shape = op.output_shape
    if shape is None:
        return _response(url, status, headers, b"{}")
    body = b""
    body_members = False
    for name, member in shape.members.items():
        location = member.serialization.get("location")
        value = result.get(name)
        if location is None:
            body_members = True
        if value is None:
            continue
        wire = member.serialization.get("name", name)
        if location == "statusCode":
            status = int(value)
        elif location == "header":
            if member.serialization.get("jsonvalue"):
                headers[wire] = base64.b64encode(json.dumps(value).encode()).decode()
            elif isinstance(member, ListShape):
                headers[wire] = ",".join(_scalar_to_text(member.member, v, "rfc822") for v in value)
            else:
                headers[wire] = _scalar_to_text(member, value, "rfc822")
        elif location == "headers":
            for key, item in value.items():
                headers[f"{wire}{key}"] = str(item)
    payload = shape.serialization.get("payload")
    if payload is not None:
        member = shape.members[payload]
        value = result.get(payload)
        if value is None:
            body = b""
        elif member.type_name in ("blob", "string"):
            body = value.encode() if isinstance(value, str) else bytes(value)
        else:
            body = json.dumps(_to_json(member, value)).encode()
    elif body_members:
        body = json.dumps(_to_json(shape, result)).encode()
    return _response(url, status, headers, body)


# --------------------------------------------------------------------------- validation


_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "float": (int, float),
    "double": (int, float),
    "boolean": (bool,),
    "timestamp": (datetime,),
    "blob": (bytes, bytearray),
    "list": (list, tuple),
    "map": (dict,),
    "structure": (dict,),
}


def _validate(shape: Shape, value: Any, path: str, problems: list[str], check_required: bool) -> None:
    kind = shape.type_name
    if value is None:
        problems.append(f"{path}: is None ({kind} {shape.name} expected; omit the member instead)")
        return
    if isinstance(shape, StructureShape) and shape.is_document_type:
        return
    expected = _PY_TYPES.get(kind)
    if expected is not None and (
        not isinstance(value, expected) or (isinstance(value, bool) and kind != "boolean")
    ):
        problems.append(f"{path}: expected {kind} ({shape.name}), got {type(value).__name__} {value!r}")
        return
    if kind == "structure" and isinstance(shape, StructureShape):
        members = shape.members
        for name, item in value.items():
            member = members.get(name)
            if member is None:
                problems.append(f"{path}: unknown member {name!r} (not in {shape.name})")
            else:
                _validate(member, item, f"{path}.{name}", problems, check_required)
        if check_required:
            problems.extend(
                f"{path}: missing required member {name!r} of {shape.name}"
                for name in shape.required_members
                if name not in value
            )
    elif kind == "list" and isinstance(shape, ListShape):
        for index, item in enumerate(value):
            _validate(shape.member, item, f"{path}[{index}]", problems, check_required)
    elif kind == "map" and isinstance(shape, MapShape):
        for key, item in value.items():
            _validate(shape.key, key, f"{path}<key {key!r}>", problems, check_required)
            _validate(shape.value, item, f"{path}[{key!r}]", problems, check_required)
    elif kind == "string":
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            problems.append(f"{path}: {value!r} is not one of {shape.name}'s values {list(enum)}")
