"""One tenant, many schools: each config owns exactly the objects of its codes and prefix (DESIGN §5).

Configs of different schools, and of one school under two prefixes, share one simulated tenant and
run in every order for several rounds; after every run each config's groups, units and teams are
exactly what its own roster asks for, whatever the others did. Also: a trust export read through
`school.codes`, a listed code missing from the export, and units with the older marker migrated
in place.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from harness import AUTUMN, make_config
from test_reliability_support import (
    GroupPicture,
    TenantPicture,
    UnitPicture,
    expected_picture,
    mini_roster,
    run_cli,
    served_tenant,
    write_cli_config,
)

from smartsync.config import Config, load_config
from smartsync.demo import DEMO_BASE_URL, demo_seed
from smartsync.engine.naming import parse_au_marker, parse_group_description
from smartsync.engine.run import RunResult, run_sync
from smartsync.graph import GraphClient, make_graph_client
from smartsync.graph.retry import Backoff
from smartsync.roster.model import Membership, Roster
from smartsync.simulator import Simulator


def school_roster(code: str, *, school: str | None = None, classes: int = 4, learners: int = 12) -> Roster:
    """A small school of its own people (ids and addresses carry the code); `school` fills the column."""
    base = mini_roster(classes, learners)

    def pid(value: str) -> str:
        return f"{code}{value}"

    people = tuple(
        replace(p, id=pid(p.id), email=p.email.replace("@mini.", f"@{code.lower()}."), school=school)
        for p in base.people
    )
    groups = tuple(replace(g, id=pid(g.id), school=school) for g in base.groups)
    members = tuple(Membership(pid(m.group_id), pid(m.user_id), m.role) for m in base.memberships)
    return Roster(people, groups, members)


def merged(*rosters: Roster) -> Roster:
    return Roster(
        tuple(p for r in rosters for p in r.people),
        tuple(g for r in rosters for g in r.groups),
        tuple(m for r in rosters for m in r.memberships),
    )


def owned_picture(state: dict[str, Any], prefix: str, codes: tuple[str, ...]) -> TenantPicture:
    """The groups and units in the tenant that carry `prefix` and one of `codes`, from the state dump."""
    heads = tuple(f"{prefix}-{code}-".lower() for code in codes)
    users = {u["id"] for u in state["users"]}  # owners that are not users (the app itself) are not ours
    groups = {
        str(g["mailNickname"]).lower(): GroupPicture(
            g["displayName"],
            "Unified" in (g.get("groupTypes") or []),
            tuple(sorted(g.get("members") or [])),
            tuple(sorted(o for o in g.get("owners") or [] if o in users)),
            bool(g.get("team")),
        )
        for g in state["groups"]
        if str(g.get("mailNickname") or "").lower().startswith(heads)
        and not parse_group_description(g.get("description"))[1]
    }
    units: dict[str, UnitPicture] = {}
    for unit in state["administrative_units"]:
        marker = parse_au_marker(unit.get("description"))
        if (
            marker
            and marker[0] == prefix
            and marker[1].lower().startswith(tuple(c.lower() + "-" for c in codes))
        ):
            assert marker[1] not in units, f"unit {marker[1]} of prefix {prefix} twice"
            units[marker[1]] = UnitPicture(unit["displayName"], tuple(sorted(unit.get("members") or [])))
    return TenantPicture(groups, units)


@dataclass
class School:
    """One config on the shared tenant, with its own export and its own Graph client."""

    name: str
    config: Config
    roster: Roster
    client: GraphClient

    def run(self, **kwargs: Any) -> RunResult:
        return run_sync(self.config, self.roster, self.client, today=AUTUMN, sleep=lambda _s: None, **kwargs)

    @property
    def owner(self) -> tuple[str, tuple[str, ...]]:
        return self.config.sync.prefix, self.config.school.all_codes


SPS = school_roster("SPS")
NFA = school_roster("NFA")


def check_each_owns_exactly_its_own(sim: Simulator, ran: set[str], schools: list[School]) -> None:
    state = sim.dump_state()
    for school in schools:
        prefix, codes = school.owner
        have = owned_picture(state, prefix, codes)
        if school.name not in ran:
            assert have == TenantPicture({}, {}), f"{school.name} has objects before its first run"
            continue
        want = expected_picture(state, school.roster, school.config, AUTUMN)
        assert want.difference(have) == [], (school.name, want.difference(have))


CONFIG_SETS = {
    "two schools, one prefix": [("SPS", "SPS", "smartsync", SPS), ("NFA", "NFA", "smartsync", NFA)],
    "one school, two prefixes": [("SPS", "SPS", "smartsync", SPS), ("SPS-other", "SPS", "other", SPS)],
    "three configs": [
        ("SPS", "SPS", "smartsync", SPS),
        ("NFA", "NFA", "smartsync", NFA),
        ("SPS-other", "SPS", "other", SPS),
    ],
}


def _orders() -> list[tuple[str, tuple[int, ...]]]:
    out = []
    for label, specs in CONFIG_SETS.items():
        out += [(label, order) for order in itertools.permutations(range(len(specs)))]
    return out


@pytest.mark.parametrize(
    ("label", "order"), _orders(), ids=lambda v: "-".join(map(str, v)) if isinstance(v, tuple) else v
)
def test_configs_sharing_a_tenant_each_keep_exactly_their_own_objects_in_every_order(
    tmp_path: Path, label: str, order: tuple[int, ...]
) -> None:
    specs = CONFIG_SETS[label]
    rosters = list({id(s[3]): s[3] for s in specs}.values())  # a school under two prefixes: one roster
    sim = Simulator(
        demo_seed(merged(*rosters), missing_every=None), base_url=DEMO_BASE_URL, time_scale=1000.0
    )
    schools: list[School] = []
    for name, code, prefix, roster in specs:
        config = make_config(tmp_path / name, school={"code": code}, sync={"prefix": prefix})
        client, _ = make_graph_client(
            config, transport=sim.transport(), backoff=Backoff(base=0.0005, cap=0.03)
        )
        schools.append(School(name, config, roster, client))
    ran: set[str] = set()
    try:
        for round_number in range(3):
            for index in order:
                school = schools[index]
                result = school.run(dry_run=False)
                assert result.status == "ok", (school.name, round_number, result.refused, result.failed[:2])
                assert not [c for c in result.plan.changes if c.is_delete], (school.name, round_number)
                ran.add(school.name)
                check_each_owns_exactly_its_own(sim, ran, schools)
                if round_number:
                    assert result.plan.empty, (school.name, [c.to_dict() for c in result.plan.changes][:3])
        # Each saw the others' objects (same prefix and other code; units of any prefix), left alone.
        for school in schools:
            seen = school.run(dry_run=True).plan.left_alone
            others = [s for s in schools if s is not school]
            assert sum(o.count for o in seen if o.kind == "admin_unit") == sum(
                len(owned_picture(sim.dump_state(), *s.owner).units) for s in others
            )
            same_prefix = [s for s in others if s.config.sync.prefix == school.config.sync.prefix]
            assert sum(o.count for o in seen if o.kind == "group") == sum(
                len(owned_picture(sim.dump_state(), *s.owner).groups) for s in same_prefix
            )
    finally:
        for school in schools:
            school.client.close()


def test_a_trust_export_is_read_through_school_codes_and_other_schools_are_left_out(tmp_path: Path) -> None:
    trust = merged(
        school_roster("SPS", school="SPS"),
        school_roster("NFA", school="NFA"),
        school_roster("XYZ", school="XYZ"),
    )
    sim = Simulator(demo_seed(trust, missing_every=None), base_url=DEMO_BASE_URL, time_scale=1000.0)
    config = make_config(tmp_path, school={"code": "SPS", "codes": ["SPS", "NFA"]})
    assert config.school.code == "SPS" and config.school.all_codes == ("SPS", "NFA")
    client, _ = make_graph_client(config, transport=sim.transport())
    with client:
        result = run_sync(config, trust, client, dry_run=False, today=AUTUMN)
        assert result.status == "ok", result.refused
        notice = next(n for n in result.plan.notices if n.code == "other_schools_left_out")
        xyz = school_roster("XYZ")
        assert f"XYZ ({len(xyz.people)} people, {len(xyz.groups)} groups)" in notice.message
        state = sim.dump_state()
        codes = {
            str(g["mailNickname"]).split("-")[1]
            for g in state["groups"]
            if g["mailNickname"].startswith("smartsync-")
        }
        assert codes == {"SPS", "NFA"}
        own = merged(school_roster("SPS", school="SPS"), school_roster("NFA", school="NFA"))
        want = expected_picture(state, own, config, AUTUMN)
        assert want.difference(owned_picture(state, "smartsync", ("SPS", "NFA"))) == []

        # A listed code with no rows in the export is refused, never read as "delete everything of it".
        before = sim.stats()["writes"]
        refused = run_sync(config, school_roster("SPS", school="SPS"), client, dry_run=False, today=AUTUMN)
        assert refused.status == "refused" and refused.exit_code == 4
        assert refused.refused is not None and refused.refused.limit == "school_vanished"
        assert "school NFA vanished from the export" in refused.refused.message
        assert sim.stats()["writes"] == before


def test_units_with_the_older_marker_are_migrated_in_place_never_recreated(tmp_path: Path) -> None:
    roster = school_roster("NFA")
    sim = Simulator(demo_seed(roster, missing_every=None), base_url=DEMO_BASE_URL, time_scale=1000.0)
    config = make_config(tmp_path, school={"code": "NFA"}, sync={"teams": {"enabled": False}})
    client, _ = make_graph_client(config, transport=sim.transport())
    with client:
        assert run_sync(config, roster, client, dry_run=False, today=AUTUMN).status == "ok"
    state = sim.dump_state()
    # As an older smartsync left them: `[smartsync:KEY]`, no prefix; plus another school's older unit.
    for unit in state["administrative_units"]:
        key = parse_au_marker(unit["description"])[1]  # type: ignore[index]
        unit["description"] = f"Managed by smartsync [smartsync:{key}]"
    foreign = dict(state["administrative_units"][0], id="0f0f0f0f-0000-4000-8000-000000000001", members=[])
    foreign["description"] = "Managed by smartsync [smartsync:SPS-au_learners]"
    foreign["displayName"] = "SPS learners"
    state["administrative_units"].append(foreign)
    ids = {u["id"]: u["displayName"] for u in state["administrative_units"]}

    sim = Simulator(state, base_url=DEMO_BASE_URL, time_scale=1000.0)
    client, _ = make_graph_client(config, transport=sim.transport())
    with client:
        migrated = run_sync(config, roster, client, dry_run=False, today=AUTUMN)
        assert migrated.status == "ok"
        ops = {c.op for c in migrated.plan.changes}
        assert ops == {"admin_unit.update"}, ops
        assert all(dict(c.set_fields).get("description", "").endswith("]") for c in migrated.plan.changes)
        after = sim.dump_state()["administrative_units"]
        assert {u["id"]: u["displayName"] for u in after} == ids  # the same units, none made or deleted
        markers = {u["id"]: parse_au_marker(u["description"]) for u in after}
        assert markers[foreign["id"]] == (None, "SPS-au_learners")  # another school's: left as it was
        assert all(m is not None and m[0] == "smartsync" for i, m in markers.items() if i != foreign["id"])
        assert [(o.kind, o.prefix, o.school, o.count) for o in migrated.plan.left_alone] == [
            ("admin_unit", None, "SPS", 1)
        ]
        assert run_sync(config, roster, client, dry_run=False, today=AUTUMN).plan.empty


def _owner(config: Config) -> tuple[str, tuple[str, ...]]:
    return config.sync.prefix, config.school.all_codes


def _owned_ids(state: dict[str, Any], prefix: str, codes: tuple[str, ...]) -> set[str]:
    heads = tuple(f"{prefix}-{code}-".lower() for code in codes)
    ids = {g["id"] for g in state["groups"] if str(g.get("mailNickname") or "").lower().startswith(heads)}
    for unit in state["administrative_units"]:
        marker = parse_au_marker(unit.get("description"))
        if marker and marker[0] == prefix and marker[1].split("-")[0] in codes:
            ids.add(unit["id"])
    return ids


def test_acceptance_two_schools_and_two_prefixes_through_the_cli_against_simulator_serve(
    tmp_path: Path,
) -> None:
    sps, nfa = school_roster("SPS"), school_roster("NFA")
    with served_tenant(tmp_path / "server", demo_seed(merged(sps, nfa), missing_every=None)) as served:
        configs = {
            "SPS": (write_cli_config(tmp_path / "sps", served, sps, school={"code": "SPS"}), sps),
            "NFA": (write_cli_config(tmp_path / "nfa", served, nfa, school={"code": "NFA"}), nfa),
            "SPS-other": (
                write_cli_config(
                    tmp_path / "sps-other", served, sps, school={"code": "SPS"}, sync={"prefix": "other"}
                ),
                sps,
            ),
        }
        loaded = {name: load_config(path, signs_in=False)[0] for name, (path, _) in configs.items()}
        ran: set[str] = set()
        for name in ("SPS", "NFA", "NFA", "SPS-other", "SPS", "NFA", "SPS-other", "SPS"):
            before = served.state()
            others = set().union(
                *(
                    _owned_ids(before, c.sync.prefix, c.school.all_codes)
                    for other, c in loaded.items()
                    if other != name
                )
            )
            logged = served.requests_logged()
            result = run_cli(configs[name][0], "run")
            assert result.returncode == 0, (name, result.stdout[-2000:], result.stderr[-2000:])
            lines = served.request_log.read_text(encoding="utf-8").splitlines()[logged:]
            writes = [json.loads(line) for line in lines]
            writes = [w for w in writes if w["method"] != "GET" and not w["path"].endswith("/$batch")]
            touched = [w for w in writes if any(i in w["path"] or i in json.dumps(w["body"]) for i in others)]
            assert touched == [], (name, touched[:3])
            ran.add(name)
            state = served.state()
            for other, config in loaded.items():
                have = owned_picture(state, config.sync.prefix, config.school.all_codes)
                if other in ran:
                    want = expected_picture(state, configs[other][1], config, date.today())
                    assert want.difference(have) == [], (name, other, want.difference(have))
                else:
                    assert have == TenantPicture({}, {}), (name, other)
            assert sum(1 for g in state["groups"] if g.get("team")) == sum(
                1
                for other in ran
                for g in owned_picture(state, *_owner(loaded[other])).groups.values()
                if g.team
            )
        # The plan document and the report say what of the others was seen and left alone.
        planned = run_cli(configs["NFA"][0], "plan", "--json")
        assert planned.returncode == 0, planned.stderr
        left_alone = json.loads(planned.stdout)["left_alone"]
        sps_groups = len(owned_picture(state, "smartsync", ("SPS",)).groups)
        sps_units = len(owned_picture(state, "smartsync", ("SPS",)).units)
        other_units = len(owned_picture(state, "other", ("SPS",)).units)
        assert {"kind": "group", "prefix": "smartsync", "school": "SPS", "count": sps_groups} in left_alone
        assert {
            "kind": "admin_unit",
            "prefix": "smartsync",
            "school": "SPS",
            "count": sps_units,
        } in left_alone
        assert {"kind": "admin_unit", "prefix": "other", "school": "SPS", "count": other_units} in left_alone
        report = run_cli(configs["NFA"][0], "plan").stdout
        assert f"Left alone: {sps_groups} groups and {sps_units + other_units} admin units" in report
