"""Accounts (`sync.users`): joiners, movers and leavers against the in-process simulated tenant.

Outcomes are read from the tenant's own state dump: which accounts exist, are enabled, carry the
marker, sit in which groups; the plan, the hand-out file and the journal are checked as documents.
"""

from __future__ import annotations

import csv
import json
import stat
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from harness import AUTUMN, Tenant, make_config, tenant
from hypothesis import given, settings
from hypothesis import strategies as st
from test_reliability_support import actual_picture, expected_picture

from smartsync.credentials import required_permissions
from smartsync.demo import DEMO_ROLES, demo_seed, user_id_for
from smartsync.engine.accounts import (
    ACCOUNT_OPS,
    Account,
    AccountDomainError,
    Marker,
    parse_marker,
    plan_accounts,
)
from smartsync.errors import EXIT_INPUT
from smartsync.handout import Handout, new_password
from smartsync.roster.model import Person, Roster
from smartsync.roster.sample import generate
from smartsync.simulator.resources.user_writes import complex_enough

ACCOUNT_ROLES = [*DEMO_ROLES, "User.ReadWrite.All", "Domain.Read.All"]
MARKER = "extensionAttribute15"


def school() -> Roster:
    return generate("small")


def seed_without(roster: Roster, missing: set[str], **marks: str) -> dict[str, Any]:
    """The school's tenant with no account for `missing` people; `marks` puts markers on accounts."""
    seed = demo_seed(roster, missing_every=None)
    seed["users"] = [u for u in seed["users"] if u["id"] not in {user_id_for(i) for i in missing}]
    for user in seed["users"]:
        person_id = next((p for p, uid in marks.items() if user_id_for(p) == user["id"]), None)
        if person_id is not None:
            user["onPremisesExtensionAttributes"] = {MARKER: marks[person_id]}
    seed["app"]["roles"] = list(ACCOUNT_ROLES)
    return seed


def learners(roster: Roster, count: int, step: int = 7) -> list[Person]:
    return [p for p in roster.people if p.role == "learner" and p.active][::step][:count]


def users_by_upn(t: Tenant) -> dict[str, dict[str, Any]]:
    return {u["userPrincipalName"].lower(): u for u in t.state()["users"]}


def marker_of(user: dict[str, Any]) -> Marker | None:
    return parse_marker((user.get("onPremisesExtensionAttributes") or {}).get(MARKER))


def with_status(roster: Roster, ids: set[str], status: str) -> Roster:
    people = tuple(replace(p, status=status) if p.id in ids else p for p in roster.people)  # type: ignore[arg-type]
    return replace(roster, people=people)


def handout_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


CREATE = {"sync": {"users": {"create": True}}}


def test_joiners_get_marked_accounts_in_their_groups_in_the_same_run(tmp_path: Path) -> None:
    roster = school()
    joiners = learners(roster, 40)
    with tenant(tmp_path, roster, seed=seed_without(roster, {p.id for p in joiners}), **CREATE) as t:
        before = {u["id"] for u in t.state()["users"]}
        first = t.sync(roster)
        assert first.status == "ok", [o.error for o in first.failed][:3]
        assert first.plan.count("user.create") == 40 and first.summary()["accounts_created"] == 40
        state = t.state()
        created = [u for u in state["users"] if u["id"] not in before]
        assert sorted(u["userPrincipalName"] for u in created) == sorted(p.email for p in joiners)
        people = {p.email: p for p in joiners}
        for user in created:
            person = people[user["userPrincipalName"]]
            assert marker_of(user) == Marker("smartsync", f"NFA-user-{person.id}")
            assert user["accountEnabled"] is True and user["usageLocation"] == "GB"
            assert (user["displayName"], user["givenName"], user["surname"]) == (
                person.display_name,
                person.first_name,
                person.last_name,
            )
            assert user["department"] == person.year_group and user["companyName"] == "Northfield Academy"
        # Groups, units and teams hold the new accounts already (the same picture a later run would want).
        assert expected_picture(state, roster, t.config, AUTUMN).difference(actual_picture(state)) == []
        member_of = {m for g in state["groups"] for m in g["members"]}
        assert {u["id"] for u in created} <= member_of

        assert first.handout is not None and first.handout.rows == 40
        path = first.handout.path
        assert path.parent == t.config.journal.path.parent and path.name == f"new-accounts-{first.run_id}.csv"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        rows = handout_rows(path)
        assert rows[0] == ["name", "year group", "class or mentor group", "sign-in address", "password"]
        assert sorted(r[3] for r in rows[1:]) == sorted(people)
        for name, year, group, address, password in rows[1:]:
            assert name == people[address].display_name and year == people[address].year_group and group
            assert complex_enough(password)
        passwords = [r[4] for r in rows[1:]]
        visible = json.dumps(first.document()) + t.config.journal.path.read_text(encoding="utf-8")
        visible += json.dumps([r.to_json() for r in t.sim.request_log])
        assert not [p for p in passwords if p in visible]

        second = t.sync(roster)
        assert second.plan.changes == () and second.handout is None


def test_leavers_are_disabled_next_run_and_deleted_after_delete_after_days(tmp_path: Path) -> None:
    roster = school()
    joiners = learners(roster, 6)
    with tenant(tmp_path, roster, seed=seed_without(roster, {p.id for p in joiners}), **CREATE) as t:
        assert t.sync(roster).status == "ok"
        leavers = {p.id for p in joiners[:5]}
        gone = with_status(roster, leavers, "left")
        disabled = t.sync(gone, today=AUTUMN)
        assert disabled.plan.count("user.disable") == 5 and disabled.status == "ok"
        users = users_by_upn(t)
        for person in joiners[:5]:
            user = users[person.email.lower()]
            assert user["accountEnabled"] is False
            assert marker_of(user) == Marker("smartsync", f"NFA-user-{person.id}", disabled=AUTUMN)
        member_of = {m for g in t.state()["groups"] for m in g["members"]}
        assert not {users[p.email.lower()]["id"] for p in joiners[:5]} & member_of
        # Nothing more until delete_after_days (90) have passed since disabling: then soft deletion.
        assert t.sync(gone, today=AUTUMN + timedelta(days=89)).plan.changes == ()
        deleted = t.sync(gone, today=AUTUMN + timedelta(days=90))
        assert deleted.plan.count("user.delete") == 5 and deleted.status == "ok"
        state = t.state()
        assert {u["userPrincipalName"] for u in state["deleted_users"]} == {p.email for p in joiners[:5]}
        assert joiners[5].email.lower() in users_by_upn(t)


def test_a_suspended_pupil_who_returns_is_enabled_and_regains_groups(tmp_path: Path) -> None:
    roster = school()
    joiner = learners(roster, 1)[0]
    with tenant(tmp_path, roster, seed=seed_without(roster, {joiner.id}), **CREATE) as t:
        t.sync(roster)
        t.sync(with_status(roster, {joiner.id}, "suspended"))
        assert users_by_upn(t)[joiner.email.lower()]["accountEnabled"] is False
        back = t.sync(roster, today=AUTUMN + timedelta(days=3))
        assert [c.op for c in back.plan.changes if c.op.startswith("user.")] == ["user.enable"]
        user = users_by_upn(t)[joiner.email.lower()]
        assert user["accountEnabled"] is True and marker_of(user) == Marker(
            "smartsync", f"NFA-user-{joiner.id}"
        )
        assert user["id"] in {m for g in t.state()["groups"] for m in g["members"]}


def test_unmarked_accounts_are_never_modified(tmp_path: Path) -> None:
    roster = school()
    joiners = learners(roster, 3)
    plain = learners(roster, 3, step=11)[1:]  # existing accounts smartsync did not create
    renamed = replace(plain[0], first_name="Renamed")
    with tenant(tmp_path, roster, seed=seed_without(roster, {p.id for p in joiners}), **CREATE) as t:
        t.sync(roster)
        untouched = {p.email.lower(): users_by_upn(t)[p.email.lower()] for p in plain}
        changed = with_status(roster, {plain[1].id}, "left")
        changed = replace(changed, people=tuple(renamed if p.id == renamed.id else p for p in changed.people))
        for day in (0, 1, 120):
            result = t.sync(changed, today=AUTUMN + timedelta(days=day))
            assert not [c for c in result.plan.changes if c.op.startswith("user.")]
        assert {k: users_by_upn(t)[k] for k in untouched} == untouched


def test_adopt_marks_matched_accounts_first_then_manages_them(tmp_path: Path) -> None:
    roster = school()
    with tenant(tmp_path, roster, seed=seed_without(roster, set()), sync={"users": {"adopt": True}}) as t:
        result = t.sync(roster)
        adopted = [c for c in result.plan.changes if c.op == "user.update"]
        assert len(adopted) == sum(1 for p in roster.people if p.active)
        assert result.plan.changes[: len(adopted)] == tuple(adopted)
        users = users_by_upn(t)
        assert all(marker_of(users[p.email.lower()]) is not None for p in roster.people if p.active)
        # From now on they are managed: their properties follow the roster.
        moved = t.sync(roster)
        assert moved.plan.count("user.update") == len(adopted)
        assert users_by_upn(t)[roster.people[0].email.lower()]["usageLocation"] == "GB"
        assert t.sync(roster).plan.changes == ()


def test_movers_get_updated_and_a_new_address_is_a_warning_unless_rename(tmp_path: Path) -> None:
    roster = school()
    pupil = learners(roster, 1)[0]
    moved = replace(pupil, last_name="Newname", email="new." + pupil.email, year_group="Year 9")
    changed = replace(roster, people=tuple(moved if p.id == pupil.id else p for p in roster.people))
    with tenant(tmp_path, roster, seed=seed_without(roster, {pupil.id}), **CREATE) as t:
        t.sync(roster)
        result = t.sync(changed)
        updates = [c for c in result.plan.changes if c.op == "user.update"]
        assert len(updates) == 1 and result.plan.count("user.create") == 0
        assert updates[0].account is not None
        assert dict(updates[0].account.properties) == {
            "displayName": moved.display_name,
            "surname": "Newname",
            "department": "Year 9",
        }
        warning = next(n for n in result.plan.notices if n.code == "account_address_changed")
        assert moved.email in warning.message and pupil.email in warning.message
        user = users_by_upn(t)[pupil.email.lower()]
        assert user["surname"] == "Newname" and user["department"] == "Year 9"
        # The person keeps their account in their groups under the old address.
        assert user["id"] in {m for g in t.state()["groups"] for m in g["members"]}

        t.config = make_config(tmp_path, sync={"users": {"create": True, "rename": True}})
        renamed = t.sync(changed)
        assert [dict(c.account.properties) for c in renamed.plan.changes if c.account] == [
            {"userPrincipalName": moved.email}
        ]
        assert moved.email.lower() in users_by_upn(t)


def test_disable_after_days_waits_from_the_first_run_that_saw_the_person_leave(tmp_path: Path) -> None:
    roster = school()
    pupil = learners(roster, 1)[0]
    config = {"sync": {"users": {"create": True, "disable_after_days": 7}}}
    with tenant(tmp_path, roster, seed=seed_without(roster, {pupil.id}), **config) as t:
        t.sync(roster)
        gone = replace(roster, people=tuple(p for p in roster.people if p.id != pupil.id))
        first = t.sync(gone, today=AUTUMN)
        assert [c.op for c in first.plan.changes if c.op.startswith("user.")] == ["user.update"]
        assert marker_of(users_by_upn(t)[pupil.email.lower()]) == Marker(
            "smartsync", f"NFA-user-{pupil.id}", leaving=AUTUMN
        )
        assert not [
            c for c in t.sync(gone, today=AUTUMN + timedelta(days=6)).plan.changes if c.op.startswith("user.")
        ]
        assert t.sync(gone, today=AUTUMN + timedelta(days=7)).plan.count("user.disable") == 1
        assert users_by_upn(t)[pupil.email.lower()]["accountEnabled"] is False


def test_wrong_domain_is_refused_up_front_naming_the_domain(tmp_path: Path) -> None:
    roster = school()
    pupil = learners(roster, 1)[0]
    wrong = replace(pupil, email=pupil.email.split("@")[0] + "@northfeild.example")
    changed = replace(roster, people=tuple(wrong if p.id == pupil.id else p for p in roster.people))
    with tenant(tmp_path, roster, seed=seed_without(roster, {pupil.id}), **CREATE) as t:
        before = t.state()
        with pytest.raises(AccountDomainError) as caught:
            t.sync(changed)
        assert caught.value.exit_code == EXIT_INPUT
        assert "northfeild.example (1 account)" in str(caught.value)
        assert t.state() == before


@pytest.mark.parametrize(
    ("change", "limit"),
    [("intake", "max_account_creations"), ("leavers", "max_account_disables")],
)
def test_account_limits_refuse_with_nothing_written(tmp_path: Path, change: str, limit: str) -> None:
    roster = school()
    if change == "intake":  # 1,000 new pupils from one export: not a September intake
        extra = tuple(
            Person(f"X{n}", "learner", f"new{n}@northfield.example", "New", f"Pupil{n}", "Year 7")
            for n in range(1000)
        )
        changed = replace(roster, people=roster.people + extra)
        seed = seed_without(roster, set())
    else:  # 50 marked accounts whose people vanished from a damaged export
        marked = learners(roster, 50, step=3)
        changed = with_status(roster, {p.id for p in marked}, "left")
        seed = seed_without(roster, set(), **{p.id: f"smartsync:NFA-user-{p.id}" for p in marked})
    with tenant(tmp_path, roster, seed=seed, **CREATE) as t:
        t.sync(roster, force=True)
        before = t.state()
        result = t.sync(changed)
        assert result.status == "refused" and result.exit_code == 4
        assert result.refused is not None and result.refused.limit == limit
        assert t.state() == before


def test_the_marker_round_trips_and_ignores_other_uses_of_the_attribute() -> None:
    marker = Marker("smartsync", "NFA-user-4711", disabled=date(2026, 7, 24))
    assert marker.value() == "smartsync:NFA-user-4711;disabled=2026-07-24"
    assert parse_marker(marker.value()) == marker
    assert parse_marker("Cost centre 12") is None and parse_marker(None) is None
    assert parse_marker("smartsync:NFA-user-1;disabled=someday") is None


def test_initial_passwords_meet_entra_complexity_and_differ() -> None:
    passwords = [new_password() for _ in range(300)]
    assert all(complex_enough(p) and len(p) == 14 for p in passwords)
    assert len(set(passwords)) == 300
    assert not complex_enough("password") and not complex_enough("Sh0rt!")


def test_user_write_permissions_are_required_only_with_sync_users(tmp_path: Path) -> None:
    assert "User.ReadWrite.All" not in required_permissions(make_config(tmp_path))
    needed = required_permissions(make_config(tmp_path, **CREATE))
    assert needed["User.ReadWrite.All"] == ["accounts (sync.users)"]
    assert needed["Domain.Read.All"] == ["accounts (sync.users)"]


def test_the_summer_quiet_window_holds_disables_until_the_new_year(tmp_path: Path) -> None:
    roster = school()
    pupil = learners(roster, 1)[0]
    with tenant(tmp_path, roster, seed=seed_without(roster, {pupil.id}), **CREATE) as t:
        t.sync(roster)
        gone = with_status(roster, {pupil.id}, "left")
        summer = t.sync(gone, today=date(2026, 8, 10))
        assert summer.plan.count("user.disable") == 0
        assert any(n.code == "quiet_window" for n in summer.plan.notices)
        assert users_by_upn(t)[pupil.email.lower()]["accountEnabled"] is True
        september = t.sync(gone, today=date(2026, 9, 2), force=True)  # the rollover archives classes
        assert september.plan.count("user.disable") == 1


statuses = st.sampled_from(["active", "suspended", "left", "gone"])
account_kinds = st.sampled_from(
    ["none", "unmarked", "marked", "marked-disabled", "disabled-by-hand", "other-use"]
)


@settings(max_examples=60, deadline=None)
@given(
    people=st.lists(st.tuples(statuses, account_kinds, st.integers(0, 200)), min_size=1, max_size=25),
    adopt=st.booleans(),
    disable_after=st.sampled_from([0, 7]),
)
def test_only_marked_accounts_are_ever_changed(
    people: list[tuple[str, str, int]], adopt: bool, disable_after: int
) -> None:
    config = make_config(
        Path("/nonexistent"),
        sync={"users": {"create": True, "adopt": adopt, "disable_after_days": disable_after}},
    )
    roster_people: list[Person] = []
    accounts: list[Account] = []
    for n, (status, kind, age) in enumerate(people):
        email = f"p{n}@northfield.example"
        if status != "gone":
            roster_people.append(Person(f"P{n}", "learner", email, "P", f"N{n}", "Year 7", status=status))  # type: ignore[arg-type]
        if kind == "none":
            continue
        when = AUTUMN - timedelta(days=age)
        value = {
            "unmarked": None,
            "marked": f"smartsync:NFA-user-P{n}",
            "marked-disabled": f"smartsync:NFA-user-P{n};disabled={when.isoformat()}",
            "disabled-by-hand": f"smartsync:NFA-user-P{n}",
            "other-use": "cost centre 12",
        }[kind]
        enabled = kind not in ("marked-disabled", "disabled-by-hand")
        accounts.append(Account(f"id-{n}", email, enabled, {}, value))
    plan = plan_accounts(Roster(tuple(roster_people)), config, accounts, today=AUTUMN)
    marked = {a.id for a in accounts if parse_marker(a.marker_value)}
    for change in plan.changes:
        if change.op == "user.create":
            assert change.object_id is None and change.users[0].address not in {
                a.user_principal_name for a in accounts
            }
            continue
        if change.object_id in marked:
            continue
        # The only change to an unmarked account: adopt writes the marker and nothing else.
        assert adopt and change.op == "user.update" and change.account is not None
        assert change.account.properties == () and change.account.marker is not None
        account = next(a for a in accounts if a.id == change.object_id)
        assert account.marker_value is None


def test_lost_answers_never_make_a_second_account_or_lose_a_password(tmp_path: Path) -> None:
    roster = school()
    joiners = learners(roster, 40)
    faults = "rate=0.2,seed=11,kinds=429+503+504+drop+lost"
    seed = seed_without(roster, {p.id for p in joiners})
    with tenant(tmp_path, roster, seed=seed, faults=faults, **CREATE) as t:
        for _ in range(4):
            result = t.sync(roster)
            if result.status == "ok" and not result.plan.changes:
                break
        state = t.state()
        new = [u for u in state["users"] if u["userPrincipalName"] in {p.email for p in joiners}]
        assert sorted(u["userPrincipalName"] for u in new) == sorted(p.email for p in joiners)
        rows = [
            r
            for path in sorted(t.config.journal.path.parent.glob("new-accounts-*.csv"))
            for r in handout_rows(path)[1:]
        ]
        # Every account made has exactly one password row; none is listed that was not made.
        assert sorted(r[3] for r in rows) == sorted(p.email for p in joiners)
        assert t.sim.stats()["faults"] > 0


def test_only_without_accounts_leaves_accounts_alone(tmp_path: Path) -> None:
    roster = school()
    joiners = learners(roster, 3)
    with tenant(tmp_path, roster, seed=seed_without(roster, {p.id for p in joiners}), **CREATE) as t:
        groups_only = t.sync(roster, dry_run=True, only=("groups",))
        assert groups_only.plan.count(*ACCOUNT_OPS) == 0
        assert {n.email for n in groups_only.plan.notices if n.code == "user_not_found"} == {
            p.email for p in joiners
        }
        accounts_only = t.sync(roster, only=("accounts",))
        assert accounts_only.plan.count("user.create") == 3
        assert {c.op for c in accounts_only.plan.changes} == {"user.create"}


def test_long_school_names_are_cut_to_entras_limits(tmp_path: Path) -> None:
    roster = school()
    pupil = learners(roster, 1)[0]
    name = "The Very Long Named Northfield Church of England Academy and Sixth Form College"
    with tenant(
        tmp_path,
        roster,
        seed=seed_without(roster, {pupil.id}),
        school={"code": "NFA", "name": name},
        **CREATE,
    ) as t:
        assert t.sync(roster).status == "ok"
        assert users_by_upn(t)[pupil.email.lower()]["companyName"] == name[:64]
        assert t.sync(roster).plan.changes == ()


@pytest.mark.parametrize("match", ["mail", "employeeId"])
def test_new_accounts_are_matched_on_later_runs_whatever_users_match(tmp_path: Path, match: str) -> None:
    roster = school()
    joiners = [p for p in learners(roster, 20) if p.employee_id][:5]
    assert len(joiners) == 5
    seed = seed_without(roster, {p.id for p in joiners})
    with tenant(tmp_path, roster, seed=seed, users={"match": match}, **CREATE) as t:
        assert t.sync(roster).plan.count("user.create") == 5
        again = t.sync(roster)
        assert again.plan.changes == () and not [n for n in again.plan.notices if n.code == "user_not_found"]


def test_handout_cells_open_as_text_in_a_spreadsheet(tmp_path: Path) -> None:
    handout = Handout(tmp_path / "new-accounts-x.csv")
    handout.add("=HYPERLINK(1)", "Year 7", "7M", "a@b.example", new_password())
    handout.close()
    name, year, group, address, password = handout_rows(handout.path)[1]
    assert name == "'=HYPERLINK(1)" and (year, group, address) == ("Year 7", "7M", "a@b.example")
    assert all(new_password()[0].isalpha() for _ in range(200)) and password[0].isalpha()


def test_sync_users_adds_no_request_to_a_no_change_run(tmp_path: Path) -> None:
    roster = school()
    costs = []
    for name, extra in (("off", {}), ("on", CREATE)):
        with tenant(tmp_path / name, roster, seed=seed_without(roster, set()), **extra) as t:
            t.sync(roster)
            before = t.sim.stats()
            assert t.sync(roster).plan.changes == ()
            after = t.sim.stats()
            costs.append((after["requests"] - before["requests"], after["ru"] - before["ru"]))
    assert costs[0] == costs[1]
