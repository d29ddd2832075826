"""The benchmark in small: the small school's runs stay near Graph's floor and far from a naive script.

The full figures (secondary school, trust) come from `make bench`; this keeps a regression in
batching, pacing or reads from reaching main unnoticed.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the benchmarks live beside the package, not inside it
    sys.path.insert(0, str(ROOT))

from benchmarks.floors import floor_read_ru, floor_writes  # noqa: E402
from benchmarks.runner import Measurement, run_school  # noqa: E402
from smartsync.engine.plan import Change  # noqa: E402
from smartsync.engine.state import GroupSpec, UserRef  # noqa: E402
from smartsync.simulator import Clock, VirtualTime  # noqa: E402


def refs(n: int, prefix: str = "u") -> tuple[UserRef, ...]:
    return tuple(UserRef(f"{prefix}{i}@nfa.example", f"{prefix}{i}") for i in range(n))


def spec(key: str, *, education_class: bool) -> GroupSpec:
    return GroupSpec(key, "class", key, "microsoft365", f"smartsync-{key}", education_class=education_class)


def test_floor_writes_follow_the_graph_cost_model() -> None:
    plain = spec("plain", education_class=False)
    school_class = spec("class", education_class=True)
    changes = [
        # 1 owner + 19 members ride on the creation, 6 more members take one PATCH: 2 writes.
        Change("group.create", "plain", users=refs(19), owners=refs(1, "t"), group=plain),
        Change("group.members.add", "plain", users=refs(6, "m")),
        # An education class is created empty: 2 owners + 30 members take two PATCHes: 3 writes.
        Change("group.create", "class", group=school_class),
        Change("group.owners.add", "class", users=refs(2, "t")),
        Change("group.members.add", "class", users=refs(20)),
        Change("group.members.add", "class", users=refs(10, "m")),
        # Removals and administrative-unit changes are one write per user: 3 + 4.
        Change("group.members.remove", "old", object_id="g1", users=refs(3)),
        Change("admin_unit.members.add", "unit", object_id="a1", users=refs(4)),
        Change("team.create", "class", template="educationClass"),
        Change("team.archive", "old", object_id="g1"),
    ]
    assert floor_writes(changes) == 2 + 3 + 3 + 4 + 1 + 1


def test_floor_writes_of_a_team_count_one_request_per_200_added_and_20_removed() -> None:
    changes = [
        Change("group.members.add", "team", object_id="g1", users=refs(230)),
        Change("group.owners.add", "team", object_id="g1", users=refs(2, "t")),
        Change("group.members.remove", "team", object_id="g1", users=refs(25, "old")),
        Change("group.owners.remove", "team", object_id="g1", users=refs(1, "old")),
    ]
    # 232 people added: two requests; 25 people removed (one of them also an owner): two requests.
    assert floor_writes(changes, frozenset({"g1"})) == 2 + 2
    # The same changes to a group without a team: 12 PATCHes of 20, then one write per removal.
    assert floor_writes(changes) == 12 + 26


def test_floor_read_ru_counts_pages_with_select() -> None:
    state = {
        "users": [{"id": str(i)} for i in range(1000)],  # two pages of 999, 1 RU each
        "groups": [
            {"mailNickname": "smartsync-a", "members": ["x"] * 1000, "owners": ["y"]},  # 2 pages x 2 + 1
            {"mailNickname": "handmade", "members": ["x"], "owners": []},  # not managed: not read
        ],
        "administrative_units": [
            {"description": "Learners [smartsync:NFA-au-learners]", "members": ["x"]},
            {"description": "Someone else's", "members": ["x"]},
        ],
    }
    # users 2 + group list 1 + members 4 + owners 1 + unit list 1 + managed unit members 1
    assert floor_read_ru(state) == 2 + 1 + 4 + 1 + 1 + 1


def test_virtual_time_moves_only_when_someone_waits() -> None:
    time = VirtualTime()
    clock = Clock(1.0, start=1000.0, real_time=time.now)
    time.sleep(2.5)
    time.sleep(-1.0)
    assert clock.now() == pytest.approx(1002.5)


def test_virtual_time_lets_parallel_threads_overlap() -> None:
    time = VirtualTime()
    ends: list[float] = []

    def lane() -> None:
        time.start_task(0.0)
        time.sleep(1.0)
        ends.append(time.now())

    for _ in range(3):  # one after another in real time, side by side on the virtual clock
        worker = threading.Thread(target=lane)
        worker.start()
        worker.join()
    assert ends == [1.0, 1.0, 1.0]
    assert time.now() == 1.0


LATENCIES = (0.0, 150.0)


@pytest.fixture(scope="module")
def all_small_runs() -> dict[tuple[str, str, float], Measurement]:
    runs = run_school("small", ("smartsync",), latencies=LATENCIES)
    runs += run_school("small", ("naive",), ("initial",), latencies=LATENCIES)
    return {(m.client, m.scenario, m.latency_ms): m for m in runs}


@pytest.fixture(params=LATENCIES, ids=lambda ms: f"{ms:g}ms")
def small_runs(
    request: pytest.FixtureRequest, all_small_runs: dict[tuple[str, str, float], Measurement]
) -> dict[tuple[str, str], Measurement]:
    """The small school's runs at one service time (none, and the live service's 150 ms median)."""
    return {
        (client, scenario): m for (client, scenario, ms), m in all_small_runs.items() if ms == request.param
    }


def test_no_scenario_is_throttled_in_more_than_one_request_in_a_hundred(
    small_runs: dict[tuple[str, str], Measurement],
) -> None:
    for (client, _), run in small_runs.items():
        if client == "smartsync":
            assert run.counts["throttled"] <= 0.01 * run.counts["requests"], run.to_dict()


def test_initial_sync_is_at_the_write_floor_with_nothing_failed(
    small_runs: dict[tuple[str, str], Measurement],
) -> None:
    initial = small_runs["smartsync", "initial"]
    assert initial.failed_changes == 0 and initial.skipped_changes == 0
    assert initial.changes > 500
    assert initial.counts["writes"] <= 1.05 * initial.floor.writes, initial.to_dict()
    assert initial.sim_seconds <= 1.25 * initial.floor.seconds, initial.to_dict()
    assert initial.counts["ru"] <= 1.25 * initial.floor.ru, initial.to_dict()


def test_no_change_run_reads_at_the_floor_and_writes_nothing(
    small_runs: dict[tuple[str, str], Measurement],
) -> None:
    quiet = small_runs["smartsync", "no_change"]
    assert quiet.changes == 0 and quiet.counts["writes"] == 0
    assert quiet.counts["throttled"] == 0
    assert quiet.sim_seconds < 60
    # With the delta state of the first run: the groups it created are read whole once, in first
    # delta rounds of 50 ids (999 references a page), and nothing else but the changes.
    assert quiet.read == "delta"
    assert quiet.counts["requests"] <= 10 and quiet.counts["batch_round_trips"] <= 3, quiet.to_dict()


def test_typical_day_and_rollover_stay_near_the_floor(small_runs: dict[tuple[str, str], Measurement]) -> None:
    day = small_runs["smartsync", "typical_day"]
    assert day.changes > 0 and day.failed_changes == 0
    assert day.counts["writes"] <= 1.05 * day.floor.writes, day.to_dict()
    # Reads in proportion to change: the delta requests and the writes, within twice their floor.
    assert day.read == "delta" and day.counts["ru"] <= 2 * day.floor.ru, day.to_dict()
    rollover = small_runs["smartsync", "rollover"]
    assert rollover.failed_changes == 0
    # Each archive also renames the group: one PATCH beyond the floor's one write per archive.
    assert rollover.counts["writes"] <= 1.25 * rollover.floor.writes, rollover.to_dict()
    assert rollover.sim_seconds <= 1.25 * rollover.floor.seconds, rollover.to_dict()


def test_smartsync_needs_a_fraction_of_the_naive_scripts_writes_and_time(
    small_runs: dict[tuple[str, str], Measurement],
) -> None:
    ours, naive = small_runs["smartsync", "initial"], small_runs["naive", "initial"]
    assert naive.failed_changes == 0
    assert naive.counts["batch_round_trips"] == 0
    assert ours.counts["writes"] * 3 < naive.counts["writes"]
    assert ours.counts["requests"] * 3 < naive.counts["requests"]
    assert ours.sim_seconds * 2 < naive.sim_seconds
