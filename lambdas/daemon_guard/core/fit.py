"""Does a task fit on an instance: CPU units, memory MiB and host ports, as ECS judges them.

An instance's free `Resources` follow ECS's ``remainingResources``: ``cpu`` and ``memory`` are
what is left, while ``ports`` are the host ports already *taken* (reserved by the agent or held by
tasks). A task's `Resources` list the host ports it needs. A port clash is the same port number
with the same protocol: 53/tcp and 53/udp do not clash.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from daemon_guard.core.model import HostPort, NetworkMode, Protocol_, Resources

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
