"""The diff: pure properties of `diff(want, have)` and the shape of the plan it makes."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from smartsync.engine.plan import REFS_PER_REQUEST, Change, Plan, RemovalRules, diff, hold_removals
from smartsync.engine.state import (
    ActualState,
    AdminUnitSpec,
    AdminUnitState,
    DesiredState,
    GroupSpec,
    GroupState,
    UserRef,
)

USERS = [UserRef(f"u{i:03d}@school.example", f"id-{i:03d}") for i in range(60)]

user_sets = st.frozensets(st.sampled_from(USERS), max_size=45)
keys = st.sampled_from([f"NFA-class-{i}" for i in range(8)])
names = st.sampled_from(["7A/Ma1 Maths", "7B/En1 English", "Mentor group 7A", "Year 7 learners"])


@st.composite
def group_specs(draw: st.DrawFn) -> dict[str, GroupSpec]:
    out = {}
    for key in draw(st.sets(keys, max_size=6)):
        owners = draw(st.frozensets(st.sampled_from(USERS), max_size=25))
        out[key] = GroupSpec(
            key=key,
            kind="class",
            display_name=draw(names),
            type=draw(st.sampled_from(["security", "microsoft365"])),
            mail_nickname=f"smartsync-{key}",
            members=draw(user_sets) | owners,
            owners=owners,
        )
    return out


@st.composite
def unit_specs(draw: st.DrawFn) -> dict[str, AdminUnitSpec]:
    return {
        key: AdminUnitSpec(key=key, display_name=draw(names), members=draw(user_sets))
        for key in draw(st.sets(st.sampled_from(["NFA-au_learners", "NFA-au_staff", "NFA-au_year-Year_7"])))
    }


def as_state(groups: dict[str, GroupSpec], units: dict[str, AdminUnitSpec]) -> ActualState:
    return ActualState(
        groups={
            k: GroupState(f"g-{k}", k, g.display_name, g.type, g.mail_nickname, g.members, g.owners)
            for k, g in groups.items()
        },
        admin_units={k: AdminUnitState(f"a-{k}", k, u.display_name, u.members) for k, u in units.items()},
    )


def apply_to_state(plan: Plan, have: ActualState, want: DesiredState) -> ActualState:
    """What a faithful tenant does with each change, on plain values."""
    groups = dict(have.groups)
    units = dict(have.admin_units)
    for c in plan.changes:
        if c.op == "group.create":
            assert c.group is not None
            g = c.group
            groups[c.key] = GroupState(
                f"g-{c.key}",
                c.key,
                g.display_name,
                g.type,
                g.mail_nickname,
                frozenset(c.users),
                frozenset(c.owners),
            )
        elif c.op == "group.update":
            groups[c.key] = replace(groups[c.key], display_name=dict(c.set_fields)["displayName"])
        elif c.op == "group.members.add":
            groups[c.key] = replace(groups[c.key], members=groups[c.key].members | set(c.users))
        elif c.op == "group.owners.add":
            groups[c.key] = replace(groups[c.key], owners=groups[c.key].owners | set(c.users))
        elif c.op == "group.members.remove":
            groups[c.key] = replace(groups[c.key], members=groups[c.key].members - set(c.users))
        elif c.op == "group.owners.remove":
            remaining = groups[c.key].owners - set(c.users)
            assert remaining, "a plan must never remove a group's last owner"
            groups[c.key] = replace(groups[c.key], owners=remaining)
        elif c.op == "group.delete":
            del groups[c.key]
        elif c.op == "admin_unit.create":
            assert c.unit is not None
            units[c.key] = AdminUnitState(f"a-{c.key}", c.key, c.unit.display_name)
        elif c.op == "admin_unit.update":
            units[c.key] = replace(units[c.key], display_name=dict(c.set_fields)["displayName"])
        elif c.op == "admin_unit.members.add":
            units[c.key] = replace(units[c.key], members=units[c.key].members | set(c.users))
        elif c.op == "admin_unit.members.remove":
            units[c.key] = replace(units[c.key], members=units[c.key].members - set(c.users))
        elif c.op == "admin_unit.delete":
            del units[c.key]
        else:  # pragma: no cover - a new op needs a rule here
            raise AssertionError(c.op)
    return ActualState(groups=groups, admin_units=units)


@settings(max_examples=200, deadline=None)
@given(group_specs(), unit_specs())
def test_diff_of_a_state_with_itself_is_empty(
    groups: dict[str, GroupSpec], units: dict[str, AdminUnitSpec]
) -> None:
    want = DesiredState(groups=groups, admin_units=units)
    assert diff(want, as_state(groups, units)).changes == ()


@settings(max_examples=300, deadline=None)
@given(group_specs(), unit_specs(), group_specs(), unit_specs())
def test_applying_the_diff_reaches_want(
    want_groups: dict[str, GroupSpec],
    want_units: dict[str, AdminUnitSpec],
    have_groups: dict[str, GroupSpec],
    have_units: dict[str, AdminUnitSpec],
) -> None:
    want = DesiredState(groups=want_groups, admin_units=want_units)
    have = as_state(have_groups, have_units)
    plan = diff(want, have)
    after = apply_to_state(plan, have, want)
    assert set(after.groups) == set(want_groups)
    assert set(after.admin_units) == set(want_units)
    for key, spec in want_groups.items():
        got = after.groups[key]
        assert got.display_name == spec.display_name
        if spec.owners or key not in have.groups or not have.groups[key].owners:
            assert got.owners == spec.owners
            assert got.members == spec.members
        else:
            # No owner in the roster: exactly one previous owner is kept (Graph's last-owner rule).
            assert len(got.owners) == 1 and got.owners <= have.groups[key].owners
            assert got.members - got.owners == spec.members - got.owners
    for key, unit in want_units.items():
        assert after.admin_units[key].members == unit.members
        assert after.admin_units[key].display_name == unit.display_name
    # Converged: planning again changes nothing.
    assert diff(want, after).changes == ()


@settings(max_examples=200, deadline=None)
@given(group_specs(), group_specs())
def test_every_request_carries_at_most_20_references(
    want_groups: dict[str, GroupSpec], have: dict[str, GroupSpec]
) -> None:
    plan = diff(DesiredState(groups=want_groups), as_state(have, {}))
    for c in plan.changes:
        if c.op == "group.create":
            assert len(c.users) + len(c.owners) <= REFS_PER_REQUEST
        if c.op in ("group.members.add", "group.owners.add"):
            assert 1 <= len(c.users) <= REFS_PER_REQUEST


def _spec(key: str, members: list[UserRef], owners: list[UserRef], name: str = "7A/Ma1 Maths") -> GroupSpec:
    return GroupSpec(
        key,
        "class",
        name,
        "microsoft365",
        f"smartsync-{key}",
        frozenset(members) | frozenset(owners),
        frozenset(owners),
    )


def test_create_carries_owners_first_then_members_and_chunks_the_rest() -> None:
    owners = USERS[:2]
    members = USERS[2:50]
    plan = diff(DesiredState(groups={"k": _spec("k", members, owners)}), ActualState())
    ops = [c.op for c in plan.changes]
    assert ops == ["group.create", "group.members.add", "group.members.add"]
    create = plan.changes[0]
    assert create.owners == tuple(sorted(owners))
    assert len(create.users) == 18  # 20 references in all
    assert [len(c.users) for c in plan.changes[1:]] == [20, 12]
    assert plan.summary()["members_added"] == 50 and plan.summary()["owners_added"] == 2


def test_owners_are_added_before_any_owner_is_removed() -> None:
    old, new = USERS[0], USERS[1]
    want = DesiredState(groups={"k": _spec("k", [], [new])})
    have = as_state({"k": _spec("k", [], [old])}, {})
    ops = [c.op for c in diff(want, have).changes]
    assert ops.index("group.owners.add") < ops.index("group.owners.remove")


def test_last_owner_is_kept_with_a_warning() -> None:
    teacher = USERS[0]
    want = DesiredState(groups={"k": _spec("k", USERS[1:3], [])})
    have = as_state({"k": _spec("k", USERS[1:3], [teacher])}, {})
    plan = diff(want, have)
    assert plan.changes == ()
    assert [n.code for n in plan.notices] == ["last_owner_kept"]


def test_rename_is_an_update_and_removed_class_is_deleted() -> None:
    want = DesiredState(groups={"a": _spec("a", USERS[:3], [], name="New name")})
    have = as_state({"a": _spec("a", USERS[:3], [], name="Old name"), "b": _spec("b", USERS[:2], [])}, {})
    plan = diff(want, have)
    assert [c.to_dict() for c in plan.changes] == [
        {
            "op": "group.update",
            "key": "a",
            "name": "New name",
            "set": {"displayName": "New name"},
            "object_id": "g-a",
        },
        {"op": "group.delete", "key": "b", "name": "7A/Ma1 Maths", "object_id": "g-b"},
    ]
    kept = diff(want, have, remove_groups=False)
    assert [c.op for c in kept.changes] == ["group.update"]


def test_type_mismatch_is_reported_not_changed() -> None:
    spec = _spec("a", USERS[:2], [])
    have = as_state({"a": replace(spec, type="security")}, {})
    plan = diff(DesiredState(groups={"a": spec}), have)
    assert plan.changes == ()
    assert plan.notices[0].code == "group_type_mismatch"


def test_plan_order_is_deterministic() -> None:
    want = DesiredState(groups={k: _spec(k, USERS[:30], USERS[30:32]) for k in ("b", "a", "c")})
    first = [c.to_dict() for c in diff(want, ActualState()).changes]
    second = [c.to_dict() for c in diff(want, ActualState()).changes]
    assert first == second
    assert isinstance(diff(want, ActualState()).changes[0], Change)


def _team(key: str, owners: list[UserRef], members: list[UserRef], edu: bool = True) -> GroupSpec:
    return replace(
        _spec(key, members, owners),
        team_template="educationClass" if edu else "standard",
        education_class=edu,
    )


def test_new_class_team_is_created_after_its_people_and_education_classes_bind_nobody_at_creation() -> None:
    spec = _team("NFA-class-2025-1", USERS[:1], USERS[1:5])
    plan = diff(DesiredState(groups={spec.key: spec}), ActualState())
    assert [c.op for c in plan.changes] == [
        "group.create",
        "group.owners.add",
        "group.members.add",
        "team.create",
    ]
    assert plan.changes[0].users == () and plan.changes[0].owners == ()
    assert plan.changes[-1].template == "educationClass"
    assert plan.summary()["teams_created"] == 1


def test_existing_team_is_not_recreated_and_plain_group_is_not_converted() -> None:
    spec = _team("NFA-class-2025-1", USERS[:1], USERS[1:5])
    state = as_state({spec.key: spec}, {})
    as_team = ActualState(
        groups={k: replace(g, is_team=True, education_class=True) for k, g in state.groups.items()}
    )
    assert diff(DesiredState(groups={spec.key: spec}), as_team).changes == ()
    plain = diff(DesiredState(groups={spec.key: spec}), state)
    assert plain.changes == ()
    assert [n.code for n in plain.notices] == ["class_group_not_education_class"]


def test_last_years_team_is_archived_with_members_intact_and_renamed() -> None:
    old = _team("NFA-class-2025-1", USERS[:1], USERS[1:5])
    new = _team("NFA-class-2026-1", USERS[:1], USERS[5:9])
    have = ActualState(
        groups={
            old.key: GroupState(
                "g-old",
                old.key,
                "7A/Ma1 Maths",
                "microsoft365",
                old.mail_nickname,
                old.members,
                old.owners,
                is_team=True,
                education_class=True,
            )
        }
    )
    plan = diff(DesiredState(groups={new.key: new}), have, rules=RemovalRules(archived_on="2026-09-01"))
    ops = [c.op for c in plan.changes]
    assert ops[-1] == "team.archive" and "group.delete" not in ops
    assert not [c for c in plan.changes if c.key == old.key and "members" in c.op]
    archive = plan.changes[-1].to_dict()
    assert archive["set"]["displayName"] == "Archived 2025-26: 7A/Ma1 Maths"
    assert "Archived by smartsync on 2026-09-01" in archive["set"]["description"]
    # Once archived it is left alone for good.
    archived = ActualState(groups={old.key: replace(have.groups[old.key], archived=True)})
    assert diff(DesiredState(), archived).changes == ()
    assert [c.op for c in diff(DesiredState(), have, rules=RemovalRules(team="delete")).changes] == [
        "group.delete"
    ]
    assert diff(DesiredState(), have, rules=RemovalRules(team="keep")).changes == ()


def test_quiet_window_holds_back_every_removal() -> None:
    want = DesiredState(groups={"a": _spec("a", USERS[:3], [])})
    have = as_state({"a": _spec("a", USERS[2:6], []), "b": _spec("b", USERS[:2], [])}, {})
    plan = hold_removals(diff(want, have), "summer")
    assert [c.op for c in plan.changes] == ["group.members.add"]
    assert plan.notices[-1].code == "quiet_window"
