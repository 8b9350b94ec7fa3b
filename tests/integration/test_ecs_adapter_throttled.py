"""The ECS adapter under throttling, against the simulator's ECS API (its real token buckets and errors)."""

from __future__ import annotations

import pytest
from daemon_guard.adapters.ecs import EcsCluster
from daemon_guard.adapters.errors import Throttled, translating

from bench.scenarios import ClusterSpec, build_cluster
from sim.ecs import profile_params
from sim.ecs_api import ApiFaults
from sim.world import World, WorldOptions


def cluster_and_adapter() -> tuple[World, EcsCluster]:
    """Cluster `prod` with its three daemon services, and the adapter over a client without retries."""
    world = World(WorldOptions(seed=3, ecs=profile_params("as-reported")))
    build_cluster(world, ClusterSpec(replica_services=2, desired_per_service=1))
    return world, EcsCluster(translating(world.client("ecs")), "prod", lambda: world.clock.now, service_ttl_s=60.0)


def test_an_expired_daemon_list_is_kept_while_ecs_throttles_its_refresh() -> None:
    # GIVEN the daemon services read once, then ECS throttling every call, past the cache's TTL
    world, ecs = cluster_and_adapter()
    first = ecs.daemon_services()
    world.ecs_api.faults = ApiFaults(throttle_rate=1.0)
    world.clock.run_until(world.clock.now + 120.0)
    # WHEN a drain asks for them again / THEN it gets the list it had (no step stalls on ListServices)
    assert ecs.daemon_services() == first
    # AND an explicit refresh (the reconciler's audit) still reports the throttle
    with pytest.raises(Throttled):
        ecs.daemon_services(refresh=True)


def test_a_first_read_of_the_daemon_list_reports_the_throttle() -> None:
    # GIVEN ECS throttling every call and nothing read yet / WHEN the daemon services are asked for
    world, ecs = cluster_and_adapter()
    world.ecs_api.faults = ApiFaults(throttle_rate=1.0)
    # THEN the throttle is reported (there is nothing to fall back on)
    with pytest.raises(Throttled):
        ecs.daemon_services()
