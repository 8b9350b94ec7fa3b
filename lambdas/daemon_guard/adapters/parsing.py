"""Raw EventBridge events in, core `GuardEvent` values out: the one place that reads event JSON.

`parse_event` never raises. It checks the payload is a JSON object under EventBridge's 256 KiB
limit, validates the envelope (the fields of Powertools' `EventBridgeModel`, strict), dispatches on ``source`` +
``detail-type``, validates ``detail`` with that kind's Parser model and maps it to the core
dataclass. Anything wrong becomes `Malformed` with a one-line reason naming the field, e.g.
``ECS Task State Change: detail.version: Input should be a valid integer``. A well-formed event of a
kind the guard does not act on (deployment state changes, launch or terminate successful, anything
foreign) becomes `Ignored`, and ``autoscaling:TEST_NOTIFICATION`` becomes `TestNotification`, both
in its EventBridge form and in the raw form Auto Scaling sends to a hook's SQS or SNS target.

Duplicate keys: Lambda's runtime decodes the event before the handler runs, and its decoder keeps the
last of two equal keys, so `parse_event` cannot see them in a delivered event. JSON the guard decodes
itself (`loads_strict`: a drain workflow's callback payload; the CLI's files, `daemon-guard replay`
included) refuses a duplicate key, naming it.

Validation is strict: AWS sends strings, numbers and booleans as such, so ``"14801"`` is not a
version and ``"true"`` is not ``agentConnected``. Times must be ISO 8601 strings with an offset;
they come out as UTC. Unknown fields are ignored, so new fields AWS adds change nothing.

Identifiers are parsed into the value types of `core.identifiers` with AWS's formats and limits:
instance ids, ECS ARNs (whose partition, account and Region the intake then compares with the
deployment's own), Auto Scaling group and hook names, lifecycle tokens, the envelope's account and
Region. An instance id of ``*``, ``i-*`` or ``i-x or agentConnected == true`` is `Malformed`, so it
never reaches an ECS query or a lifecycle call. The ARNs of one ECS event must agree: a container
instance or task of another cluster, account or Region than ``clusterArn`` is `Malformed`.

Bounds, so no value outside what AWS produces reaches a decision: times between
`EARLIEST_EVENT_TIME` (2016-01-01, before which no EventBridge or CloudWatch Events event exists)
and `LATEST_EVENT_TIME` (2100-01-01); ``version`` a Java long (0 to 2**63 - 1);
``containerInstanceArns`` at most `MAX_CLUSTER_INSTANCES` (ECS's quota of container instances per
cluster) and de-duplicated; event ids at most `MAX_EVENT_ID_CHARS`. NTH's Spot sample, dated
1970-01-01, is therefore `Malformed`, as is any time whose arithmetic would overflow.

Documentation placeholders, decided deliberately. Some samples in AWS's guides carry placeholders
that real events never do:

- ``time`` (or ``registeredAt``) of ``yyyy-mm-ddThh:mm:ssZ``: `Malformed`, with a reason saying it
  is a documentation placeholder. An event carrying one was pasted from the docs (say with the
  console's "send event"); acting on it would make AWS write calls with made-up tokens and ids.
- ``instance-action`` of ``action``: `Malformed` the same way. Real values are ``terminate``,
  ``stop`` and ``hibernate`` (all three take the instance away); anything else is rejected too.
- ``resources`` of ``auto-scaling-group-arn``: harmless. Lifecycle actions take the group from
  ``detail.AutoScalingGroupName`` and never read ``resources``; `ServiceAction.service_arn` takes
  only an ECS service ARN from ``resources`` and is None when there is none.

Defaults, also deliberate: lifecycle actions without ``Origin``/``Destination`` (groups without a
warm pool, events before 2021) read as EC2 -> AutoScalingGroup on launch and AutoScalingGroup -> EC2
on terminate; a Spot interruption's deadline is the warning's time plus two minutes, as EC2
documents.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, StrictBool, StrictInt, StrictStr
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from daemon_guard.adapters.strict_json import DuplicateKeyError, loads_strict, refuse_duplicate_keys
from daemon_guard.core.events import (
    ContainerInstanceChanged,
    Ec2State,
    GuardEvent,
    Ignored,
    InstanceStateChanged,
    LifecycleAction,
    LifecycleLocation,
    LifecycleTransition,
    Malformed,
    RebalanceRecommendation,
    ScheduledChange,
    ServiceAction,
    SpotAction,
    SpotInterruption,
    TaskChanged,
    TestNotification,
)
from daemon_guard.core.identifiers import (
    EARLIEST_EPOCH,
    LATEST_EPOCH,
    AccountId,
    AsgName,
    ClusterArn,
    ContainerInstanceArn,
    EcsArn,
    HookName,
    IdentifierError,
    InstanceId,
    LifecycleToken,
    Region,
    ServiceArn,
    TaskArn,
)

__all__ = ["MAX_EVENT_BYTES", "DuplicateKeyError", "dedupe_key", "loads_strict", "parse_event",
           "refuse_duplicate_keys"]

MAX_EVENT_BYTES = 256 * 1024
TIME_PLACEHOLDER = "yyyy-mm-ddThh:mm:ssZ"
INSTANCE_ACTION_PLACEHOLDER = "action"
TEST_NOTIFICATION = "autoscaling:TEST_NOTIFICATION"
SPOT_WARNING_LEAD = timedelta(minutes=2)
_MAX_REASON_CHARS = 300
EARLIEST_EVENT_TIME = datetime.fromtimestamp(EARLIEST_EPOCH, UTC)
LATEST_EVENT_TIME = datetime.fromtimestamp(LATEST_EPOCH, UTC)
MAX_VERSION = 2**63 - 1
MAX_CLUSTER_INSTANCES = 5000
MAX_EVENT_ID_CHARS = 128

_ModelT = TypeVar("_ModelT", bound=BaseModel)

_IdT = TypeVar("_IdT", bound=str)


def _reject_placeholder(placeholder: str) -> Callable[[object], object]:
    def check(value: object) -> object:
        if value == placeholder:
            raise PydanticCustomError(
                "documentation_placeholder",
                "documentation placeholder '{placeholder}', not a real event",
                {"placeholder": placeholder},
            )
        return value

    return check


def _event_time(value: object) -> datetime:
    _reject_placeholder(TIME_PLACEHOLDER)(value)
    if not isinstance(value, str):
        raise PydanticCustomError("event_time_type", "Input should be an ISO 8601 time string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError("event_time_parsing", "Input should be an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise PydanticCustomError("event_time_offset", "Input should be a time with a UTC offset")
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:
        utc = datetime.min.replace(tzinfo=UTC) if parsed.year == 1 else datetime.max.replace(tzinfo=UTC)
    if utc < EARLIEST_EVENT_TIME:
        raise PydanticCustomError("event_time_range", "{time} is before {bound}, earlier than any AWS event",
                                  {"time": value[:40], "bound": EARLIEST_EVENT_TIME.date().isoformat()})
    if utc >= LATEST_EVENT_TIME:
        raise PydanticCustomError("event_time_range", "{time} is not before {bound}: not a real event time",
                                  {"time": value[:40], "bound": LATEST_EVENT_TIME.date().isoformat()})
    return utc


def _identifier(kind: Callable[[object], _IdT]) -> Callable[[object], _IdT]:
    def check(value: object) -> _IdT:
        try:
            return kind(value)
        except IdentifierError as refused:
            raise PydanticCustomError("identifier", "{reason}", {"reason": refused.reason}) from None

    return check


EventTime = Annotated[datetime, PlainValidator(_event_time)]
Text = Annotated[StrictStr, Field(min_length=1)]
EventId = Annotated[StrictStr, Field(min_length=1, max_length=MAX_EVENT_ID_CHARS)]
Version = Annotated[StrictInt, Field(ge=0, le=MAX_VERSION)]
Ec2Id = Annotated[InstanceId, PlainValidator(_identifier(InstanceId))]
Cluster = Annotated[ClusterArn, PlainValidator(_identifier(ClusterArn))]
Instance = Annotated[ContainerInstanceArn, PlainValidator(_identifier(ContainerInstanceArn))]
Task = Annotated[TaskArn, PlainValidator(_identifier(TaskArn))]
Group = Annotated[AsgName, PlainValidator(_identifier(AsgName))]
Hook = Annotated[HookName, PlainValidator(_identifier(HookName))]
Token = Annotated[LifecycleToken, PlainValidator(_identifier(LifecycleToken))]
Account = Annotated[AccountId, PlainValidator(_identifier(AccountId))]
AwsRegion = Annotated[Region, PlainValidator(_identifier(Region))]
Location = Literal["EC2", "AutoScalingGroup", "WarmPool"]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True)


class GuardEnvelopeModel(BaseModel):
    """The EventBridge envelope, strict: what every event must carry before dispatch.

    The fields of Powertools' ``EventBridgeModel``, declared here: importing that model imports
    every Powertools event model (~40 modules), which doubled the intake's cold start.
    """

    model_config = ConfigDict(strict=True)

    version: StrictStr
    id: EventId
    source: Text
    account: Account
    region: AwsRegion
    time: EventTime
    resources: list[StrictStr]
    detail_type: Text = Field(alias="detail-type")
    detail: dict[str, Any]
    replay_name: StrictStr | None = Field(default=None, alias="replay-name")


class ContainerInstanceAttributeModel(_Strict):
    """One ECS attribute; capabilities such as ``ecr-auth`` carry no value."""

    name: Text
    value: StrictStr | None = None


class ContainerInstanceDetailModel(_Strict):
    """``detail`` of ECS Container Instance State Change."""

    cluster_arn: Cluster = Field(alias="clusterArn")
    container_instance_arn: Instance = Field(alias="containerInstanceArn")
    ec2_instance_id: Ec2Id = Field(alias="ec2InstanceId")
    status: Text
    agent_connected: StrictBool = Field(alias="agentConnected")
    version: Version
    registered_at: EventTime | None = Field(default=None, alias="registeredAt")
    attributes: list[ContainerInstanceAttributeModel]


class TaskDetailModel(_Strict):
    """``detail`` of ECS Task State Change."""

    cluster_arn: Cluster = Field(alias="clusterArn")
    task_arn: Task = Field(alias="taskArn")
    container_instance_arn: Instance | None = Field(default=None, alias="containerInstanceArn")
    group: Text
    last_status: Text = Field(alias="lastStatus")
    desired_status: Text = Field(alias="desiredStatus")
    started_by: StrictStr | None = Field(default=None, alias="startedBy")
    launch_type: StrictStr | None = Field(default=None, alias="launchType")
    stopped_reason: StrictStr | None = Field(default=None, alias="stoppedReason")
    version: Version


class ServiceActionDetailModel(_Strict):
    """``detail`` of ECS Service Action."""

    cluster_arn: Cluster = Field(alias="clusterArn")
    event_name: Text = Field(alias="eventName")
    reason: StrictStr | None = None
    container_instance_arns: list[Instance] = Field(
        default_factory=list, alias="containerInstanceArns", max_length=MAX_CLUSTER_INSTANCES)


class LifecycleActionDetailModel(_Strict):
    """``detail`` of EC2 Instance-launch / Instance-terminate Lifecycle Action."""

    token: Token = Field(alias="LifecycleActionToken")
    asg_name: Group = Field(alias="AutoScalingGroupName")
    hook_name: Hook = Field(alias="LifecycleHookName")
    ec2_instance_id: Ec2Id = Field(alias="EC2InstanceId")
    transition: Literal["autoscaling:EC2_INSTANCE_LAUNCHING", "autoscaling:EC2_INSTANCE_TERMINATING"] = (
        Field(alias="LifecycleTransition")
    )
    origin: Location | None = Field(default=None, alias="Origin")
    destination: Location | None = Field(default=None, alias="Destination")


class LaunchLifecycleActionDetailModel(LifecycleActionDetailModel):
    """A launch lifecycle action: its transition must agree with its detail-type."""

    transition: Literal["autoscaling:EC2_INSTANCE_LAUNCHING"] = Field(alias="LifecycleTransition")


class TerminateLifecycleActionDetailModel(LifecycleActionDetailModel):
    """A terminate lifecycle action: its transition must agree with its detail-type."""

    transition: Literal["autoscaling:EC2_INSTANCE_TERMINATING"] = Field(alias="LifecycleTransition")


class TestNotificationDetailModel(_Strict):
    """``detail`` of an ``autoscaling:TEST_NOTIFICATION`` delivered through EventBridge."""

    __test__ = False  # not a pytest test class

    asg_name: Group = Field(alias="AutoScalingGroupName")


_ASG_ARN = r"^arn:aws(-[a-z]+)*:autoscaling:[a-z]{2,4}(-[a-z]+)+-\d{1,2}:\d{12}:autoScalingGroup:"


class RawTestNotificationModel(_Strict):
    """``autoscaling:TEST_NOTIFICATION`` as Auto Scaling sends it to a hook's SQS or SNS target."""

    __test__ = False  # not a pytest test class

    event: Literal["autoscaling:TEST_NOTIFICATION"] = Field(alias="Event")
    account_id: Account = Field(alias="AccountId")
    request_id: EventId = Field(alias="RequestId")
    asg_name: Group = Field(alias="AutoScalingGroupName")
    asg_arn: Annotated[StrictStr, Field(pattern=_ASG_ARN)] = Field(alias="AutoScalingGroupARN")


class SpotInterruptionDetailModel(_Strict):
    """``detail`` of EC2 Spot Instance Interruption Warning."""

    instance_id: Ec2Id = Field(alias="instance-id")
    action: Annotated[
        Literal["terminate", "stop", "hibernate"],
        BeforeValidator(_reject_placeholder(INSTANCE_ACTION_PLACEHOLDER)),
    ] = Field(alias="instance-action")


class RebalanceDetailModel(_Strict):
    """``detail`` of EC2 Instance Rebalance Recommendation."""

    instance_id: Ec2Id = Field(alias="instance-id")


class _InvalidEventError(Exception):
    """A validation failure already phrased as a one-line reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_REASON_CHARS else flat[: _MAX_REASON_CHARS - 3] + "..."


def _reason(error: PydanticValidationError, prefix: str = "") -> str:
    errors = error.errors(include_url=False, include_input=False, include_context=False)
    first = errors[0]
    where = ".".join(str(part) for part in (prefix, *first["loc"]) if part != "") or "event"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


def _validate(model: type[_ModelT], data: object, prefix: str = "") -> _ModelT:
    try:
        return model.model_validate(data)
    except PydanticValidationError as error:
        raise _InvalidEventError(_reason(error, prefix)) from None


def _detail(model: type[_ModelT], envelope: GuardEnvelopeModel) -> _ModelT:
    return _validate(model, envelope.detail, prefix="detail")


def _in_cluster(cluster: ClusterArn, arn: EcsArn, where: str) -> None:
    """An ARN named beside `cluster` must be of that cluster: same owner and (long form) cluster name."""
    if arn.owner != cluster.owner or arn.cluster_name not in (None, cluster.name):
        owner = f"{arn.owner.partition}:{arn.owner.region}:{arn.owner.account}"
        raise _InvalidEventError(
            f"{where}: names cluster {arn.cluster_name or '(short form)'} in {owner}, not detail.clusterArn's "
            f"{cluster.name} in {cluster.owner.partition}:{cluster.owner.region}:{cluster.owner.account}")


def _container_instance(envelope: GuardEnvelopeModel) -> GuardEvent:
    detail = _detail(ContainerInstanceDetailModel, envelope)
    _in_cluster(detail.cluster_arn, detail.container_instance_arn, "detail.containerInstanceArn")
    return ContainerInstanceChanged(
        account=envelope.account,
        region=envelope.region,
        cluster_arn=detail.cluster_arn,
        container_instance_arn=detail.container_instance_arn,
        ec2_instance_id=detail.ec2_instance_id,
        status=detail.status,
        agent_connected=detail.agent_connected,
        version=detail.version,
        registered_at=detail.registered_at,
        attributes=MappingProxyType({attribute.name: attribute.value for attribute in detail.attributes}),
        event_id=envelope.id,
        time=envelope.time,
    )


def _task(envelope: GuardEnvelopeModel) -> GuardEvent:
    detail = _detail(TaskDetailModel, envelope)
    _in_cluster(detail.cluster_arn, detail.task_arn, "detail.taskArn")
    if detail.container_instance_arn is not None:
        _in_cluster(detail.cluster_arn, detail.container_instance_arn, "detail.containerInstanceArn")
    return TaskChanged(
        account=envelope.account,
        region=envelope.region,
        cluster_arn=detail.cluster_arn,
        task_arn=detail.task_arn,
        container_instance_arn=detail.container_instance_arn,
        group=detail.group,
        last_status=detail.last_status,
        desired_status=detail.desired_status,
        started_by=detail.started_by,
        launch_type=detail.launch_type,
        stopped_reason=detail.stopped_reason,
        version=detail.version,
        event_id=envelope.id,
        time=envelope.time,
    )


def _service_action(envelope: GuardEnvelopeModel) -> GuardEvent:
    detail = _detail(ServiceActionDetailModel, envelope)
    for index, arn in enumerate(detail.container_instance_arns):
        _in_cluster(detail.cluster_arn, arn, f"detail.containerInstanceArns.{index}")
    service_arn = next((ServiceArn(arn) for arn in envelope.resources if _is_service_arn(arn)), None)
    return ServiceAction(
        account=envelope.account,
        region=envelope.region,
        cluster_arn=detail.cluster_arn,
        service_arn=service_arn,
        event_name=detail.event_name,
        reason=detail.reason,
        event_id=envelope.id,
        time=envelope.time,
        # A redelivered or padded list must not multiply reads and plans: each instance once, in order.
        container_instance_arns=tuple(dict.fromkeys(detail.container_instance_arns)),
    )


def _is_service_arn(value: str) -> bool:
    try:
        ServiceArn(value)
    except IdentifierError:
        return False
    return True


_DEFAULT_PATH: dict[LifecycleTransition, tuple[LifecycleLocation, LifecycleLocation]] = {
    "launch": ("EC2", "AutoScalingGroup"),
    "terminate": ("AutoScalingGroup", "EC2"),
}


def _lifecycle(transition: LifecycleTransition) -> Callable[[GuardEnvelopeModel], GuardEvent]:
    model: type[LifecycleActionDetailModel] = (
        LaunchLifecycleActionDetailModel if transition == "launch" else TerminateLifecycleActionDetailModel
    )

    def parse(envelope: GuardEnvelopeModel) -> GuardEvent:
        # A test notification has no token or instance: recognise it by name before validating.
        if TEST_NOTIFICATION in (envelope.detail.get("LifecycleTransition"), envelope.detail.get("Event")):
            test = _detail(TestNotificationDetailModel, envelope)
            return TestNotification(
                account=envelope.account, region=envelope.region, asg_name=test.asg_name, event_id=envelope.id
            )
        detail = _detail(model, envelope)
        origin, destination = _DEFAULT_PATH[transition]
        return LifecycleAction(
            account=envelope.account,
            region=envelope.region,
            transition=transition,
            asg_name=detail.asg_name,
            ec2_instance_id=detail.ec2_instance_id,
            hook_name=detail.hook_name,
            token=detail.token,
            origin=detail.origin or origin,
            destination=detail.destination or destination,
            event_id=envelope.id,
            time=envelope.time,
        )

    return parse


def _spot_interruption(envelope: GuardEnvelopeModel) -> GuardEvent:
    detail = _detail(SpotInterruptionDetailModel, envelope)
    action: SpotAction = detail.action
    return SpotInterruption(
        account=envelope.account,
        region=envelope.region,
        ec2_instance_id=detail.instance_id,
        action=action,
        deadline=envelope.time + SPOT_WARNING_LEAD,
        event_id=envelope.id,
        time=envelope.time,
    )


def _rebalance(envelope: GuardEnvelopeModel) -> GuardEvent:
    detail = _detail(RebalanceDetailModel, envelope)
    return RebalanceRecommendation(
        account=envelope.account,
        region=envelope.region,
        ec2_instance_id=detail.instance_id,
        event_id=envelope.id,
        time=envelope.time,
    )


def _health_time(value: object) -> datetime:
    """AWS Health writes times in RFC 1123 (``Sat, 05 Jun 2016 15:10:09 GMT``); ISO 8601 is taken too."""
    if isinstance(value, str) and value[:1].isalpha():
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            raise PydanticCustomError("health_time", "Input should be an RFC 1123 or ISO 8601 time") from None
        # The same calendar bounds as every other event time, applied to the ISO form of this one.
        return _event_time(parsed.isoformat() if parsed.tzinfo else parsed.replace(tzinfo=UTC).isoformat())
    return _event_time(value)


def _affected_entity(value: object) -> str:
    """An EC2 entity that looks like an instance id must be one (anything else is no instance: kept as is)."""
    if isinstance(value, str) and value.startswith("i-"):
        return _identifier(InstanceId)(value)
    if not isinstance(value, str) or not value or len(value) > 1600:
        raise PydanticCustomError("entity_value", "Input should be a non-empty string of at most 1600 characters")
    return value


class AffectedEntityModel(_Strict):
    """One entity an AWS Health event affects; for EC2, an instance id (validated as one)."""

    entity_value: Annotated[str, PlainValidator(_affected_entity)] = Field(alias="entityValue")


class HealthDetailModel(_Strict):
    """``detail`` of AWS Health Event: only what decides whether it concerns EC2 instances."""

    service: Text
    category: Text = Field(alias="eventTypeCategory")


class ScheduledChangeDetailModel(HealthDetailModel):
    """``detail`` of an AWS Health EC2 scheduled change."""

    event_arn: Text = Field(alias="eventArn")
    event_type_code: Text = Field(alias="eventTypeCode")
    start_time: Annotated[datetime, PlainValidator(_health_time)] | None = Field(default=None, alias="startTime")
    status: StrictStr | None = Field(default=None, alias="statusCode")
    affected: list[AffectedEntityModel] = Field(
        default_factory=list, alias="affectedEntities", max_length=MAX_CLUSTER_INSTANCES)


class InstanceStateDetailModel(_Strict):
    """``detail`` of EC2 Instance State-change Notification."""

    instance_id: Ec2Id = Field(alias="instance-id")
    state: Literal["pending", "running", "stopping", "stopped", "shutting-down", "terminated"]


def _health(envelope: GuardEnvelopeModel) -> GuardEvent:
    head = _detail(HealthDetailModel, envelope)
    if head.service != "EC2" or head.category != "scheduledChange":
        return Ignored(account=envelope.account, region=envelope.region, detail_type=envelope.detail_type,
                       event_id=envelope.id,
                       reason=_one_line(f"AWS Health {head.service} {head.category}: only EC2 scheduled changes "
                                        "take instances away"))
    detail = _detail(ScheduledChangeDetailModel, envelope)
    # EC2 entities are instance ids; anything else (a host id, say) is no instance the guard can drain.
    ids = tuple(dict.fromkeys(InstanceId(e.entity_value) for e in detail.affected
                              if e.entity_value.startswith("i-")))
    return ScheduledChange(
        account=envelope.account, region=envelope.region, event_arn=detail.event_arn,
        event_type_code=detail.event_type_code, ec2_instance_ids=ids, start_time=detail.start_time,
        status=detail.status, event_id=envelope.id, time=envelope.time,
    )


def _instance_state(envelope: GuardEnvelopeModel) -> GuardEvent:
    detail = _detail(InstanceStateDetailModel, envelope)
    state: Ec2State = detail.state
    return InstanceStateChanged(account=envelope.account, region=envelope.region, ec2_instance_id=detail.instance_id,
                                state=state, event_id=envelope.id, time=envelope.time)


_ROUTES: dict[tuple[str, str], Callable[[GuardEnvelopeModel], GuardEvent]] = {
    ("aws.ecs", "ECS Container Instance State Change"): _container_instance,
    ("aws.ecs", "ECS Task State Change"): _task,
    ("aws.ecs", "ECS Service Action"): _service_action,
    ("aws.autoscaling", "EC2 Instance-launch Lifecycle Action"): _lifecycle("launch"),
    ("aws.autoscaling", "EC2 Instance-terminate Lifecycle Action"): _lifecycle("terminate"),
    ("aws.ec2", "EC2 Spot Instance Interruption Warning"): _spot_interruption,
    ("aws.ec2", "EC2 Instance Rebalance Recommendation"): _rebalance,
    ("aws.health", "AWS Health Event"): _health,
    ("aws.ec2", "EC2 Instance State-change Notification"): _instance_state,
}

_IGNORED: dict[tuple[str, str], str] = {
    ("aws.ecs", "ECS Deployment State Change"): "deployments are the ECS scheduler's business",
    ("aws.autoscaling", "EC2 Instance Launch Successful"): "placement starts when the instance registers",
    ("aws.autoscaling", "EC2 Instance Launch Unsuccessful"): "no instance joined, nothing to place",
    ("aws.autoscaling", "EC2 Instance Terminate Successful"): "drains start from the terminate hook",
    ("aws.autoscaling", "EC2 Instance Terminate Unsuccessful"): "the reconciler audits instances that stay",
}


def _raw_test_notification(raw: dict[str, Any]) -> GuardEvent:
    note = _validate(RawTestNotificationModel, raw)
    return TestNotification(
        account=note.account_id,
        region=Region(note.asg_arn.split(":")[3]),
        asg_name=note.asg_name,
        event_id=note.request_id,
    )


def _payload_bytes(raw: dict[Any, Any]) -> int:
    try:
        text = json.dumps(raw, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError, RecursionError) as error:
        raise _InvalidEventError(f"event: not JSON ({type(error).__name__})") from None
    return len(text.encode("utf-8", "surrogatepass"))


def _parse(raw: object) -> GuardEvent:
    if not isinstance(raw, dict):
        raise _InvalidEventError(f"event: expected a JSON object, got {type(raw).__name__}")
    size = _payload_bytes(raw)
    if size > MAX_EVENT_BYTES:
        raise _InvalidEventError(f"event: {size} bytes, over EventBridge's {MAX_EVENT_BYTES}-byte limit")
    if "detail-type" not in raw and raw.get("Event") == TEST_NOTIFICATION:
        return _raw_test_notification(raw)
    envelope = _validate(GuardEnvelopeModel, raw)
    key = (envelope.source, envelope.detail_type)
    route = _ROUTES.get(key)
    if route is not None:
        try:
            return route(envelope)
        except _InvalidEventError as invalid:
            raise _InvalidEventError(f"{envelope.detail_type}: {invalid.reason}") from None
    return Ignored(
        account=envelope.account,
        region=envelope.region,
        reason=_one_line(_IGNORED.get(key, f"not a kind daemon-guard handles (source {envelope.source!r})")),
        detail_type=envelope.detail_type,
        event_id=envelope.id,
    )


def parse_event(raw: object) -> GuardEvent:
    """Turn one raw EventBridge event into a core `GuardEvent`; never raises.

    Parameters
    ----------
    raw
        The event exactly as Lambda received it.

    Returns
    -------
    GuardEvent
        The event's kind as a frozen dataclass; `Ignored` for well-formed events the guard does not
        act on; `Malformed` with a one-line reason naming the field at fault for anything else.
    """
    try:
        return _parse(raw)
    except _InvalidEventError as invalid:
        return Malformed(_one_line(invalid.reason))
    except Exception as error:
        # The intake must not crash into Lambda's retries over one bad event; a bug here still
        # shows, as a Malformed reason that says so (and the property test looks for it).
        return Malformed(f"internal error while parsing: {type(error).__name__}")


def dedupe_key(event: GuardEvent) -> str | None:
    """Return the key under which duplicate deliveries of `event` collapse, or None for `Malformed`.

    Container-instance and task events collapse on (ARN, version): ECS bumps the version on every
    change, so a redelivery shares the key while a new change does not, whatever its event id.
    Every other kind collapses on its EventBridge event id.
    """
    match event:
        case ContainerInstanceChanged():
            return f"{event.container_instance_arn}#v{event.version}"
        case TaskChanged():
            return f"{event.task_arn}#v{event.version}"
        case Malformed():
            return None
        case _:
            return event.event_id
