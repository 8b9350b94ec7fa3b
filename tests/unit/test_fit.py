"""Fit: CPU, memory and host ports as ECS judges them, and host ports per network mode."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from daemon_guard.core.fit import fits, host_ports_of, shortfall
from daemon_guard.core.model import HostPort, NetworkMode, Resources

TCP80 = HostPort(80, "tcp")
UDP80 = HostPort(80, "udp")


@pytest.mark.parametrize(
    ("need", "free", "expected_fits", "expected_shortfall"),
    [
        pytest.param(Resources(256, 512), Resources(256, 512), True, Resources(), id="exactly-enough"),
        pytest.param(Resources(257, 512), Resources(256, 1024), False, Resources(1, 0),
                     id="one-cpu-unit-short"),
        pytest.param(Resources(128, 2048), Resources(1024, 512), False, Resources(0, 1536),
                     id="memory-short"),
        pytest.param(Resources(512, 512), Resources(0, 0), False, Resources(512, 512), id="both-short"),
        pytest.param(Resources(0, 0, frozenset({TCP80})), Resources(0, 0, frozenset({TCP80})), False,
                     Resources(0, 0, frozenset({TCP80})), id="same-port-same-protocol-clashes"),
        pytest.param(Resources(0, 0, frozenset({UDP80})), Resources(0, 0, frozenset({TCP80})), True,
                     Resources(), id="tcp-and-udp-on-one-port-do-not-clash"),
        pytest.param(Resources(0, 0, frozenset({TCP80, HostPort(443)})),
                     Resources(0, 0, frozenset({HostPort(22), HostPort(443)})), False,
                     Resources(0, 0, frozenset({HostPort(443)})), id="only-the-clashing-ports-are-short"),
        pytest.param(Resources(0, 0), Resources(0, 0, frozenset({TCP80})), True, Resources(),
                     id="dynamic-ports-need-no-fixed-port"),
    ],
)
def test_fits_when_cpu_memory_and_ports_are_free(
    need: Resources, free: Resources, expected_fits: bool, expected_shortfall: Resources,
) -> None:
    # GIVEN what a task needs and what an instance has left (ports: already taken)
    # WHEN fit and shortfall are judged
    # THEN the task fits exactly when nothing is short, and the shortfall names what is missing
    assert fits(need, free) is expected_fits
    assert shortfall(need, free) == expected_shortfall


@pytest.mark.parametrize(
    ("mode", "mappings", "expected"),
    [
        pytest.param("host", [{"containerPort": 80}], {TCP80}, id="host-uses-the-container-port"),
        pytest.param("host", [{"containerPort": 8125, "hostPort": 8125, "protocol": "udp"}],
                     {HostPort(8125, "udp")}, id="host-udp"),
        pytest.param("host", [{"containerPort": 53, "protocol": "udp"}, {"containerPort": 53}],
                     {HostPort(53, "udp"), HostPort(53, "tcp")}, id="host-tcp-and-udp-on-one-port"),
        pytest.param("bridge", [{"containerPort": 8080, "hostPort": 80}], {TCP80},
                     id="bridge-fixed-host-port"),
        pytest.param("bridge", [{"containerPort": 8080, "hostPort": 0}], set(), id="bridge-zero-is-dynamic"),
        pytest.param("bridge", [{"containerPort": 8080}], set(), id="bridge-absent-is-dynamic"),
        pytest.param("bridge", [{"containerPortRange": "8000-8010"}], set(),
                     id="bridge-port-range-is-dynamic"),
        pytest.param("bridge", [{"containerPort": 8080, "hostPort": 80, "protocol": "UDP"}], {UDP80},
                     id="protocol-case-insensitive"),
        pytest.param("awsvpc", [{"containerPort": 80, "hostPort": 80}], set(), id="awsvpc-none-on-the-host"),
        pytest.param("none", [{"containerPort": 80}], set(), id="none-mode-none"),
        pytest.param("host", [], set(), id="no-mappings"),
    ],
)
def test_host_ports_follow_the_network_mode(
    mode: NetworkMode, mappings: list[Mapping[str, object]], expected: set[HostPort],
) -> None:
    # GIVEN container port mappings in a network mode
    # WHEN mapped to host ports
    ports = host_ports_of(mode, mappings)

    # THEN only the fixed host ports ECS would reserve are listed, tcp by default
    assert ports == frozenset(expected)


def test_host_ports_reject_an_unknown_protocol() -> None:
    # GIVEN a mapping with a protocol ECS does not know
    # WHEN mapped / THEN the mistake is named
    with pytest.raises(ValueError, match="tcp or udp"):
        host_ports_of("host", [{"containerPort": 80, "protocol": "sctp"}])
