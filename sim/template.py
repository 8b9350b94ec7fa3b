"""What `cdk deploy` would deploy, read from the synthesized template: the simulator's only source.

`deployment_facts(config_doc, account, region)` synthesizes the CDK app in process (without the
pip step of the asset), resolves the CloudFormation intrinsics against one simulated account and
region, and returns what the simulated deployment needs: each function (handler string,
environment, timeout, memory, durable ExecutionTimeout and retention, role, log group, alias and
the EventInvokeConfig attached to the alias), each rule (pattern or schedule, targets with their
retry policy, dead-letter queue and input), the lifecycle hooks, the state table, and every
role's identity-policy statements. Nothing here decides anything: a fact missing from the template
is missing here.

Synthesis takes seconds, so the template is cached per configuration (canonical JSON): in memory
for the life of the process, and on disk (in the temp directory) keyed by the configuration and a
digest of every source the template depends on, so a changed construct is always re-synthesized.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

PARTITION = "aws"


class TemplateError(Exception):
    """The template holds something the simulator cannot read."""


@dataclass(frozen=True)
class AsyncInvokeConfig:
    """The EventInvokeConfig Lambda applies to asynchronous invocations of one qualified function."""

    max_retries: int = 2  # Lambda's default when no EventInvokeConfig applies
    max_event_age_s: int = 21600
    on_failure_arn: str | None = None


@dataclass(frozen=True)
class FunctionFacts:
    """One Lambda function as deployed."""

    logical_id: str
    name: str
    arn: str
    handler: str
    environment: Mapping[str, str]
    timeout_s: int
    memory_mb: int
    role_arn: str
    log_group_arn: str | None
    tracing: bool
    alias_arn: str
    version: str
    durable_timeout_s: int | None
    durable_retention_days: int | None
    alias_async: AsyncInvokeConfig
    dead_letter_arn: str | None


@dataclass(frozen=True)
class TargetFacts:
    """One rule target."""

    arn: str
    retry_attempts: int
    max_event_age_s: int
    dead_letter_arn: str | None
    input: Any | None


@dataclass(frozen=True)
class RuleFacts:
    """One EventBridge rule: an event pattern or a schedule, and its targets."""

    name: str
    pattern: Mapping[str, Any] | None
    schedule_s: float | None
    targets: tuple[TargetFacts, ...]


@dataclass(frozen=True)
class HookFacts:
    """One lifecycle hook."""

    group: str
    name: str
    transition: str
    heartbeat_s: int
    default_result: str


@dataclass(frozen=True)
class DeploymentFacts:
    """Everything the simulated deployment reads from the template."""

    functions: Mapping[str, FunctionFacts]  # by logical id
    rules: tuple[RuleFacts, ...]
    hooks: tuple[HookFacts, ...]
    table_name: str
    table_arn: str
    queue_arn: str
    policies: Mapping[str, tuple[tuple[str, Mapping[str, Any]], ...]] = field(default_factory=dict)
    """Role ARN -> (policy logical id, statement) for every identity-policy statement of the role."""
    outputs: Mapping[str, str] = field(default_factory=dict)

    def function_by_handler(self, handler: str) -> FunctionFacts:
        """The one function whose handler string is `handler`."""
        found = [f for f in self.functions.values() if f.handler == handler]
        if len(found) != 1:
            raise TemplateError(f"{len(found)} functions with handler {handler!r}")
        return found[0]

    def function_by_arn(self, arn: str) -> FunctionFacts:
        """The function an (alias-)qualified or unqualified ARN names."""
        for fn in self.functions.values():
            if arn in (fn.arn, fn.alias_arn) or arn.startswith(fn.arn + ":"):
                return fn
        raise TemplateError(f"no function at {arn}")


# --------------------------------------------------------------------------- synthesis (cached)


def _canonical(config_doc: Mapping[str, Any]) -> str:
    return json.dumps(config_doc, sort_keys=True, separators=(",", ":"))


def synthesized_template(config_doc: Mapping[str, Any]) -> dict[str, Any]:
    """The CloudFormation template `cdk synth` produces for this configuration (cached per process)."""
    template: dict[str, Any] = json.loads(_synth(_canonical(config_doc)))
    return template


@lru_cache(maxsize=32)
def _synth(canonical_doc: str) -> str:
    """The template text, from the on-disk cache when the same sources synthesized it before."""
    key = hashlib.sha256(canonical_doc.encode() + _sources_digest().encode()).hexdigest()[:32]
    cached = _CACHE_DIR / f"{key}.json"
    if cached.exists():
        return cached.read_text()
    text = _synth_now(canonical_doc)
    _CACHE_DIR.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(text)
    partial.replace(cached)
    return text


_REPO = Path(__file__).resolve().parents[1]
_CACHE_DIR = Path(tempfile.gettempdir()) / "daemon-guard-synth-cache"


@lru_cache(maxsize=1)
def _sources_digest() -> str:
    """What a template depends on: the infra and Lambda sources, cdk.json and the CDK library version."""
    digest = hashlib.sha256(importlib.metadata.version("aws-cdk-lib").encode())
    for path in sorted([*(_REPO / "infra").rglob("*.py"), *(_REPO / "lambdas").rglob("*.py"), _REPO / "cdk.json"]):
        digest.update(str(path.relative_to(_REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _synth_now(canonical_doc: str) -> str:
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    import aws_cdk as cdk

    from infra.app import build_app

    with tempfile.TemporaryDirectory(prefix="daemon-guard-synth-") as outdir:
        app = cdk.App(outdir=outdir, context={
            "daemon-guard": json.loads(canonical_doc), "daemon-guard:skip-bundling-install": True,
            "daemon-guard:nag": False,
        })
        stack = build_app(app)
        assembly = app.synth()
        return Path(assembly.get_stack_artifact(stack.artifact_id).template_full_path).read_text()


# --------------------------------------------------------------------------- intrinsics


class Resolver:
    """Resolves Ref / Fn::GetAtt / Fn::Join / Fn::Select / Fn::Split / Fn::Sub in one account and region."""

    def __init__(self, template: Mapping[str, Any], account: str, region: str, stack: str = "DaemonGuard") -> None:
        self.resources: Mapping[str, Any] = template.get("Resources", {})
        self.parameters: Mapping[str, Any] = template.get("Parameters", {})
        self.account, self.region, self.stack = account, region, stack
        self.pseudo = {"AWS::AccountId": account, "AWS::Region": region, "AWS::Partition": PARTITION,
                       "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": stack, "AWS::NoValue": None}

    def __call__(self, value: Any) -> Any:
        """`value` with every intrinsic resolved."""
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical, attribute)
            if key == "Fn::Join":
                separator, parts = arg
                return str(separator).join(str(self(p)) for p in self(parts))
            if key == "Fn::Select":
                index, items = arg
                return self(items)[int(self(index))]
            if key == "Fn::Split":
                separator, text = arg
                return str(self(text)).split(separator)
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self(arg[1]))
                return re.sub(r"\$\{([^}]+)\}", lambda m: str(extra[m.group(1)] if m.group(1) in extra else
                                                              self.ref_or_att(m.group(1))), text)
        return {k: self(v) for k, v in value.items()}

    def ref_or_att(self, name: str) -> Any:
        """``${X}`` or ``${X.Y}`` inside Fn::Sub."""
        if "." in name and name.split(".", 1)[0] in self.resources:
            logical, attribute = name.split(".", 1)
            return self.get_att(logical, attribute)
        return self.ref(name)

    def physical_name(self, logical: str) -> str:
        """A generated physical name, as CloudFormation makes one (stack-logicalid-suffix)."""
        return f"{self.stack}-{logical}-SIM"[:64]

    def ref(self, name: str) -> Any:
        """The value of ``Ref``."""
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name].get("Default")
        resource = self.resources.get(name)
        if resource is None:
            raise TemplateError(f"Ref to unknown {name}")
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::Lambda::Function":
            return self(props.get("FunctionName")) or self.physical_name(name)
        if kind == "AWS::Lambda::Alias":
            return f"{self.function_arn(self(props['FunctionName']))}:{self(props['Name'])}"
        if kind == "AWS::Lambda::Version":
            return f"{self.function_arn(self(props['FunctionName']))}:1"
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{self.region}.amazonaws.com/{self.account}/{self.physical_name(name)}"
        if kind in ("AWS::SNS::Topic",):
            return f"arn:{PARTITION}:sns:{self.region}:{self.account}:{self.physical_name(name)}"
        if kind == "AWS::IAM::ManagedPolicy":
            return f"arn:{PARTITION}:iam::{self.account}:policy/{self.physical_name(name)}"
        if kind == "AWS::KMS::Key":
            return f"00000000-0000-4000-8000-{abs(hash(name)) % 10**12:012d}"
        return self(props.get(_NAME_PROPERTY.get(kind, ""))) or self.physical_name(name)

    def function_arn(self, name_or_arn: str) -> str:
        """The unqualified ARN of a function named by name or ARN."""
        if name_or_arn.startswith("arn:"):
            return ":".join(name_or_arn.split(":")[:7])
        return f"arn:{PARTITION}:lambda:{self.region}:{self.account}:function:{name_or_arn}"

    def get_att(self, logical: str, attribute: str) -> Any:
        """The value of ``Fn::GetAtt``."""
        resource = self.resources.get(logical)
        if resource is None:
            raise TemplateError(f"GetAtt on unknown {logical}")
        kind = resource["Type"]
        name = self.ref(logical)
        a, r = self.account, self.region
        arns: dict[str, Callable[[], Any]] = {
            "AWS::Lambda::Function": lambda: self.function_arn(name),
            "AWS::IAM::Role": lambda: f"arn:{PARTITION}:iam::{a}:role/{name}",
            "AWS::DynamoDB::Table": lambda: f"arn:{PARTITION}:dynamodb:{r}:{a}:table/{name}",
            "AWS::SQS::Queue": lambda: f"arn:{PARTITION}:sqs:{r}:{a}:{self.physical_name(logical)}",
            "AWS::Logs::LogGroup": lambda: f"arn:{PARTITION}:logs:{r}:{a}:log-group:{name}:*",
            "AWS::KMS::Key": lambda: f"arn:{PARTITION}:kms:{r}:{a}:key/{name}",
            "AWS::Events::Rule": lambda: f"arn:{PARTITION}:events:{r}:{a}:rule/{name}",
            "AWS::SNS::Topic": lambda: name,
        }
        if attribute == "Arn" and kind in arns:
            return arns[kind]()
        if kind == "AWS::Lambda::Version" and attribute == "Version":
            return "1"
        if kind == "AWS::SQS::Queue" and attribute == "QueueName":
            return self.physical_name(logical)
        raise TemplateError(f"GetAtt {logical}.{attribute} ({kind}) is not modelled")


_NAME_PROPERTY = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Events::Rule": "Name",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::IAM::Policy": "PolicyName",
}


# --------------------------------------------------------------------------- facts


def _rate_seconds(expression: str) -> float:
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression)
    if match is None:
        raise TemplateError(f"schedule {expression!r} is not a rate() the simulator models")
    unit = {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
    return float(int(match.group(1)) * unit)


def facts_from_template(template: Mapping[str, Any], account: str, region: str) -> DeploymentFacts:
    """Read a synthesized template (see the module docstring)."""
    resolve = Resolver(template, account, region)
    resources: Mapping[str, Any] = template["Resources"]

    def of_type(kind: str) -> dict[str, Mapping[str, Any]]:
        return {k: r.get("Properties", {}) for k, r in resources.items() if r["Type"] == kind}

    aliases = {resolve.ref(k): resolve.function_arn(resolve(p["FunctionName"])) for k, p in
               of_type("AWS::Lambda::Alias").items()}
    invoke_configs: dict[str, AsyncInvokeConfig] = {}
    for props in of_type("AWS::Lambda::EventInvokeConfig").values():
        qualified = f"{resolve.function_arn(resolve(props['FunctionName']))}:{resolve(props['Qualifier'])}"
        on_failure = resolve(props.get("DestinationConfig", {})).get("OnFailure", {}).get("Destination")
        invoke_configs[qualified] = AsyncInvokeConfig(
            max_retries=int(props.get("MaximumRetryAttempts", 2)),
            max_event_age_s=int(props.get("MaximumEventAgeInSeconds", 21600)), on_failure_arn=on_failure)

    functions: dict[str, FunctionFacts] = {}
    for logical, props in of_type("AWS::Lambda::Function").items():
        arn = resolve.get_att(logical, "Arn")
        (alias_arn,) = [a for a, fn in aliases.items() if fn == arn] or [f"{arn}:$LATEST"]
        durable = props.get("DurableConfig")
        log_group = props.get("LoggingConfig", {}).get("LogGroup")
        role = resolve(props["Role"])
        functions[logical] = FunctionFacts(
            logical_id=logical, name=resolve.ref(logical), arn=arn, handler=props["Handler"],
            environment={k: str(resolve(v)) for k, v in props.get("Environment", {}).get("Variables", {}).items()},
            timeout_s=int(props.get("Timeout", 3)), memory_mb=int(props.get("MemorySize", 128)), role_arn=role,
            log_group_arn=(f"arn:{PARTITION}:logs:{region}:{account}:log-group:{resolve(log_group)}:*"
                           if log_group is not None else None),
            tracing=props.get("TracingConfig", {}).get("Mode") == "Active", alias_arn=alias_arn, version="1",
            durable_timeout_s=int(durable["ExecutionTimeout"]) if durable else None,
            durable_retention_days=int(durable.get("RetentionPeriodInDays", 14)) if durable else None,
            alias_async=invoke_configs.get(alias_arn, AsyncInvokeConfig()),
            dead_letter_arn=resolve(props.get("DeadLetterConfig", {}).get("TargetArn")),
        )

    rules: list[RuleFacts] = []
    for logical, props in of_type("AWS::Events::Rule").items():
        targets = tuple(TargetFacts(
            arn=resolve(t["Arn"]), retry_attempts=int(t.get("RetryPolicy", {}).get("MaximumRetryAttempts", 185)),
            max_event_age_s=int(t.get("RetryPolicy", {}).get("MaximumEventAgeInSeconds", 86400)),
            dead_letter_arn=resolve(t.get("DeadLetterConfig", {}).get("Arn")),
            input=json.loads(t["Input"]) if "Input" in t else None,
        ) for t in props.get("Targets", []))
        schedule = props.get("ScheduleExpression")
        rules.append(RuleFacts(
            name=resolve.ref(logical), pattern=resolve(props.get("EventPattern")),
            schedule_s=_rate_seconds(schedule) if schedule else None, targets=targets))

    hooks = tuple(HookFacts(
        group=resolve(p["AutoScalingGroupName"]), name=resolve(p["LifecycleHookName"]),
        transition=p["LifecycleTransition"], heartbeat_s=int(p.get("HeartbeatTimeout", 3600)),
        default_result=p.get("DefaultResult", "ABANDON"),
    ) for p in of_type("AWS::AutoScaling::LifecycleHook").values())

    policies: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for logical, props in of_type(kind).items():
            for role in props.get("Roles", []):
                role_arn = resolve.get_att(role["Ref"], "Arn")
                for statement in props["PolicyDocument"]["Statement"]:
                    policies.setdefault(role_arn, []).append((logical, resolve(statement)))

    (table,) = of_type("AWS::DynamoDB::Table")
    (queue,) = of_type("AWS::SQS::Queue")
    outputs = {k: str(resolve(v["Value"])) for k, v in template.get("Outputs", {}).items()}
    return DeploymentFacts(
        functions=functions, rules=tuple(rules), hooks=hooks, table_name=resolve.ref(table),
        table_arn=resolve.get_att(table, "Arn"), queue_arn=resolve.get_att(queue, "Arn"),
        policies={k: tuple(v) for k, v in policies.items()}, outputs=outputs)


def deployment_facts(config_doc: Mapping[str, Any], account: str, region: str) -> DeploymentFacts:
    """Synthesize (cached) and read the deployment of `config_doc` in one account and region."""
    return facts_from_template(synthesized_template(config_doc), account, region)
