"""The range suite's attribution (bench.attribution): which violations the guard counted, by cause, and which
it did not, read from the guard's own published events."""

from __future__ import annotations

from daemon_guard.core.guard_events import iso

from bench.attribution import Break, Violation, attribute, guard_records, sim_seconds
from sim.clock import EPOCH


def own_event(detail_type: str, instance_id: str, at_s: float, **detail: object) -> dict[str, object]:
    """A guard event as the simulated PutEvents keeps it (`at` in ISO 8601, simulated second `at_s`)."""
    return {"detail-type": detail_type, "source": "daemon-guard",
            "detail": {"instanceId": instance_id, "at": iso(EPOCH.timestamp() + at_s), **detail}}


def test_an_order_violation_is_counted_only_by_a_break_naming_an_earlier_phase_on_that_instance() -> None:
    # GIVEN a break on i-1 in the replica phase (a Spot notice too short), and one on i-2 in the metrics tier
    breaks = [Break("i-1", "replicas", "notice-too-short", 100.0), Break("i-2", "metrics", "ecs-draining", 300.0)]
    # WHEN daemons were told to stop early on i-1 (apps live), on i-2 (the log router before the metrics tier,
    # seen by the guard only after), on i-2 again with apps live (no break names an app phase) and on i-3
    violations = [Violation("daemons-after-apps", "i-1", 105.0, ("replicas", "standalone")),
                  Violation("tier-order", "i-2", 290.0, ("metrics",)),
                  Violation("daemons-after-apps", "i-2", 290.0, ("standalone",)),
                  Violation("tier-order", "i-3", 10.0, ("app-agents",))]
    out = attribute(violations, breaks, {})
    # THEN the first two are counted with their causes, the other two are not
    assert out["counted"]["daemons-after-apps"] == {"notice-too-short": 1}
    assert out["counted"]["tier-order"] == {"ecs-draining": 1}
    assert out["uncounted"] == {"daemons-first": 0, "daemons-after-apps": 1, "tier-order": 1, "tasks-killed": 0}


def test_a_late_app_break_covers_daemons_stopped_before_any_app_phase() -> None:
    # GIVEN a break over late app tasks / WHEN a daemon stopped while a replica was live / THEN it is counted
    out = attribute([Violation("daemons-after-apps", "i-1", 50.0, ("replicas",))],
                    [Break("i-1", "late app tasks", "notice-too-short", 40.0)], {})
    assert out["counted"]["daemons-after-apps"] == {"notice-too-short": 1}
    assert out["uncounted"]["daemons-after-apps"] == 0


def test_a_kill_is_counted_by_the_last_break_before_it_and_never_by_one_after() -> None:
    # GIVEN two breaks on i-1 (a heartbeat end at 50 s, the notice at 118 s) and one on i-2 after its kill
    breaks = [Break("i-1", "replicas", "heartbeats", 50.0), Break("i-1", "settle", "notice-too-short", 118.0),
              Break("i-2", "settle", "notice-too-short", 200.0)]
    # AND i-4's drain found it gone after its notice (its events came late)
    breaks.append(Break("i-4", "replicas", "notice-missed", 400.0))
    # WHEN tasks are killed at 120 s on each, and on i-3 which the guard never drained
    kills = [Violation("tasks-killed", i, 120.0) for i in ("i-1", "i-1", "i-2", "i-3", "i-4")]
    out = attribute(kills, breaks, {})
    # THEN the two on i-1 are the notice's, i-4's the missed notice's; the ones on i-2 and i-3 are uncounted
    assert out["counted"]["tasks-killed"] == {"notice-too-short": 2, "notice-missed": 1}
    assert out["uncounted"]["tasks-killed"] == 2


def test_a_kill_is_counted_by_an_instance_gone_break_said_after_it_and_only_on_that_instance() -> None:
    # GIVEN i-1's drain found it gone with tasks it followed (said at 139 s, after EC2's kill at 120 s), and
    # i-2's drain broke by a daemon stopped elsewhere, also after its kill
    breaks = [Break("i-1", "replicas", "instance-gone", 139.0), Break("i-2", "replicas", "stopped-elsewhere", 139.0)]
    # WHEN tasks were killed at 120 s on i-1 (two), i-2 and i-3
    kills = [Violation("tasks-killed", i, 120.0) for i in ("i-1", "i-1", "i-2", "i-3")]
    out = attribute(kills, breaks, {})
    # THEN i-1's are counted as instance-gone; a later break of another cause counts nothing, nor one elsewhere
    assert out["counted"]["tasks-killed"] == {"instance-gone": 2}
    assert out["uncounted"]["tasks-killed"] == 2


def test_a_break_said_once_the_instance_was_gone_explains_nothing_the_drain_saw() -> None:
    # GIVEN i-1's drain last saw it at 100 s and found it gone with tasks of the replica phase (said at 139 s;
    # EC2 killed them at 120 s)
    breaks = [Break("i-1", "replicas", "instance-gone", 139.0, unseen_since=100.0)]
    # WHEN a daemon was told to stop with apps live at the kill (EC2 ending everything), and one earlier (60 s)
    violations = [Violation("tasks-killed", "i-1", 120.0),
                  Violation("daemons-after-apps", "i-1", 120.0, ("replicas",)),
                  Violation("daemons-after-apps", "i-1", 60.0, ("replicas",))]
    out = attribute(violations, breaks, {})
    # THEN the kill and the disorder at the kill are counted as instance-gone; the earlier one, before the
    # drain's last look, is not
    assert out["counted"]["daemons-after-apps"] == {"instance-gone": 1}
    assert out["uncounted"]["daemons-after-apps"] == 1
    assert out["counted"]["tasks-killed"] == {"instance-gone": 1}


def test_a_break_said_once_the_instance_was_gone_explains_what_stopped_after_the_drains_last_sight_of_it() -> None:
    # GIVEN i-1's drain last saw it at 100 s in its replica phase and found it gone at 141.2 s, tiers left
    breaks = [Break("i-1", "replicas", "instance-gone", 141.2, unseen_since=100.0,
                    phases_left=("replicas", "standalone", "agents", "metrics"))]
    # WHEN ECS stopped a later tier's daemon at 138.2 s with agents live (unseen by the drain), one at 90 s
    # (before its last look: the drain saw it or made it), and one behind a phase the break does not name
    violations = [Violation("tier-order", "i-1", 138.2, ("agents",)),
                  Violation("tier-order", "i-1", 90.0, ("agents",)),
                  Violation("tier-order", "i-1", 138.2, ("logs",))]
    out = attribute(violations, breaks, {})
    # THEN only the one after the last sight, in a phase left, is counted as instance-gone
    assert out["counted"]["tier-order"] == {"instance-gone": 1}
    assert out["uncounted"]["tier-order"] == 2



def test_a_break_of_a_drain_that_never_saw_its_instance_explains_whatever_stopped_there() -> None:
    # GIVEN a drain that never saw i-1 registered found it gone, its notice over (no last sight)
    breaks = [Break("i-1", "replicas", "notice-missed", 141.2, phases_left=("replicas", "agents"))]
    # WHEN a daemon was stopped with replicas live at 30 s
    out = attribute([Violation("daemons-after-apps", "i-1", 30.0, ("replicas",))], breaks, {})
    # THEN it is counted: the guard neither saw nor made anything there
    assert out["counted"]["daemons-after-apps"] == {"notice-missed": 1}


def test_a_replica_before_the_daemons_is_counted_only_where_the_gate_failed_open_before_it() -> None:
    # GIVEN gates opened past their timeout on i-1 at 200 s and on i-2 at 400 s
    failed_open = {"i-1": 200.0, "i-2": 400.0}
    # WHEN replicas were served before the daemons on i-1 (at 205 s), i-2 (at 390 s) and i-3
    out = attribute([Violation("daemons-first", "i-1", 205.0), Violation("daemons-first", "i-2", 390.0),
                     Violation("daemons-first", "i-3", 50.0)], [], failed_open)
    # THEN only i-1's is counted, as the gate's timeout
    assert out["counted"]["daemons-first"] == {"gate-timeout": 1}
    assert out["uncounted"]["daemons-first"] == 2


def test_the_guards_events_are_read_back_as_breaks_and_gates_failed_open_in_simulated_seconds() -> None:
    # GIVEN the guard's published events (a break with its cause, a gate failed open twice, another kind)
    events = [own_event("Drain Guarantee Broken", "i-1", 118.0, phase="settle", hardEnd="notice",
                        cause="notice-too-short", tasksNotStopped=2),
              own_event("Gate Failed Open", "i-2", 300.0), own_event("Gate Failed Open", "i-2", 360.0),
              own_event("Instance Drain Completed", "i-1", 120.0),
              own_event("Drain Guarantee Broken", "i-3", 141.0, phase="replicas", hardEnd=None, cause="instance-gone",
                        tasksNotStopped=3, unseenSince="2026-01-05T08:01:40.000Z", phasesLeft=["replicas", "logs"])]
    # WHEN read / THEN the breaks at 118 s and 141 s with their causes (the second with the drain's last sight of
    # the instance and the phases left), and i-2's first failed-open time
    breaks, failed_open = guard_records(events)
    assert breaks == [Break("i-1", "settle", "notice-too-short", 118.0),
                      Break("i-3", "replicas", "instance-gone", 141.0, 100.0, ("replicas", "logs"))]
    assert failed_open == {"i-2": 300.0}
    assert sim_seconds("2026-01-05T08:00:01.500Z") == 1.5
