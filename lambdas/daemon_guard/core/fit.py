"""Does a task fit on an instance: CPU units, memory MiB and host ports, as ECS judges them.

An instance's free `Resources` follow ECS's ``remainingResources``: ``cpu`` and ``memory`` are
what is left, while ``ports`` are the host ports already *taken* (reserved by the agent or held by
tasks). A task's `Resources` list the host ports it needs. A port clash is the same port number
with the same protocol: 53/tcp and 53/udp do not clash.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from daemon_guard.core.model import HostPort, InstanceView, NetworkMode, Protocol_, Resources, TaskView

_PROTOCOLS: dict[str, Protocol_] = {"tcp": "tcp", "udp": "udp"}


def port_clashes(need: Resources, free: Resources) -> frozenset[HostPort]:
    """Host ports `need` asks for that are already taken on the instance described by `free`."""
    return need.ports & free.ports


def fits(need: Resources, free: Resources) -> bool:
    """True when `need` fits in `free`: enough CPU and memory, and no host port already taken.

    Parameters
    ----------
    need
        What the task (or tasks) to place require.
    free
        What the instance has left; its ``ports`` are the host ports already taken.
    """
    return need.cpu <= free.cpu and need.memory <= free.memory and not port_clashes(need, free)


def room_after_stopping(instance: InstanceView, tasks: Sequence[TaskView]) -> Resources:
    """The instance's free `Resources` once the tasks on it already being stopped have reached STOPPED.

    ECS gives a task's CPU, memory *and host ports* back when the task reaches STOPPED: "If a task
    that is supposed to be RUNNING is transitioned to STOPPED, the agent releases the resources that
    were allocated to the stopped task, such as CPU, memory, and available ports" (Amazon ECS
    Developer Guide, "Amazon ECS container instance state change events"). Until then the task still
    holds them in ``remainingResources``, whose PORTS list is the ports "reserved by the Amazon ECS
    container agent (at instance registration time) and any task containers that have reserved port
    mappings on the host" (API reference, ContainerInstance.remainingResources). So each task on
    `instance` desired STOPPED and not yet STOPPED is credited with its CPU and memory, and its host
    ports are taken off the taken set, except ports the agent reserved at registration, which stay
    taken. Tasks on other instances, still wanted RUNNING, or already STOPPED (whose room is already in
    ``remaining``) change nothing. Used by the placement planner (does a missing daemon fit once those
    tasks end) and the eviction planner (what is left to free).
    """
    free = instance.remaining
    for task in tasks:
        if task.container_instance_arn == instance.arn and task.stopping and task.last_status != "STOPPED":
            released = task.requirements
            free = Resources(free.cpu + released.cpu, free.memory + released.memory,
                             free.ports - (released.ports - instance.registered.ports))
    return free


def shortfall(need: Resources, free: Resources) -> Resources:
    """What is missing for `need` to fit in `free`.

    Returns
    -------
    Resources
        The extra CPU units and memory MiB (zero when enough) and the clashing host ports. An
        all-zero result with no ports means `need` fits.
    """
    return Resources(
        cpu=max(0, need.cpu - free.cpu),
        memory=max(0, need.memory - free.memory),
        ports=port_clashes(need, free),
    )


def host_ports_of(
    network_mode: NetworkMode, port_mappings: Iterable[Mapping[str, object]]
) -> frozenset[HostPort]:
    """The fixed host ports a task definition's container port mappings occupy, as ECS maps them.

    Parameters
    ----------
    network_mode
        The task definition's network mode.
    port_mappings
        Container ``portMappings`` entries in the ECS API shape (``containerPort``, ``hostPort``,
        ``protocol``, ``containerPortRange``), from every container of the task definition.

    Returns
    -------
    frozenset[HostPort]
        - ``host``: every mapping's ``containerPort`` (ECS requires ``hostPort`` to equal it).
        - ``bridge``: the non-zero ``hostPort`` of each mapping; an absent or zero ``hostPort`` is
          a dynamic port from the ephemeral range and holds no fixed port.
        - ``awsvpc``: none; each task has its own ENI. (ENI trunking limits are out of scope.)
        - ``none``: none.
        The protocol defaults to ``tcp``. Port ranges (``containerPortRange``) are always dynamic
        on the host, so they add nothing.

    Raises
    ------
    ValueError
        For a protocol other than tcp or udp.
    """
    if network_mode not in ("host", "bridge"):
        return frozenset()
    ports: set[HostPort] = set()
    for mapping in port_mappings:
        protocol = _protocol_of(mapping)
        if network_mode == "host":
            port = _int_or_zero(mapping.get("containerPort"))
        else:
            port = _int_or_zero(mapping.get("hostPort"))
        if port > 0:
            ports.add(HostPort(port, protocol))
    return frozenset(ports)


def _protocol_of(mapping: Mapping[str, object]) -> Protocol_:
    raw = mapping.get("protocol") or "tcp"
    protocol = _PROTOCOLS.get(str(raw).lower())
    if protocol is None:
        raise ValueError(f"port mapping protocol must be tcp or udp, got {raw!r}")
    return protocol


def _int_or_zero(value: object) -> int:
    # The API gives ints; anything else (absent, None) means no fixed port.
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
