"""A full run against the simulated tenant from each file-based source type, read through the config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from harness import tenant

from smartsync.roster.model import Roster
from smartsync.roster.sources import read_roster

FIXTURES = Path(__file__).parent / "fixtures" / "sources"

# The school codes each export holds: a config owns only the codes it names.
SCHOOLS = {
    "oneroster-1.1": {"code": "NFA"},
    "oneroster-1.2": {"code": "SCH1", "codes": ["SCH1", "SCH2"]},
    "sds-v1-uk": {"code": "10001", "codes": ["10001", "10002"]},
    "sds-v2.1": {"code": "110001", "codes": ["110001", "110003"]},
}
SOURCES = {
    "oneroster-1.1": {"type": "oneroster-csv", "path": str(FIXTURES / "oneroster-1.1")},
    "oneroster-1.2": {"type": "oneroster-csv", "path": str(FIXTURES / "oneroster-1.2")},
    "sds-v1-uk": {
        "type": "sds-csv",
        "path": str(FIXTURES / "sds" / "sds-v1-uk-25users"),
        "username_domain": "contoso.example",
    },
    "sds-v2.1": {"type": "sds-csv", "path": str(FIXTURES / "sds" / "sds-v2.1")},
}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_a_full_run_creates_the_groups_of_the_source(name: str, tmp_path: Path) -> None:
    overrides: dict[str, Any] = {"source": SOURCES[name], "school": SCHOOLS[name]}
    with tenant(tmp_path, Roster(), **overrides) as probe:
        roster = read_roster(probe.config.source)
    with tenant(tmp_path, roster, missing_every=None, **overrides) as t:
        first = t.sync(roster)
        assert first.status == "ok", first
        users = {u["id"]: u["userPrincipalName"].lower() for u in t.state()["users"]}
        # Class keys end in the roster id (school-class-year-id): find each class's group by it.
        classes = {
            nick.rsplit("-", 1)[-1]: {users[m] for m in g["members"]}
            for nick, g in t.managed_groups().items()
            if "-class-" in nick
        }
        active = {p.id for p in roster.people if p.active}
        for group in roster.groups:
            if group.type != "class":
                continue
            want = {
                roster.person(m.user_id).email.lower()
                for m in roster.memberships
                if m.group_id == group.id and m.user_id in active
            }
            assert classes[group.id] == want, group
        assert len(classes) == sum(1 for g in roster.groups if g.type == "class")
        by_name = {g["displayName"] for g in t.managed_groups().values()}
        assert "All learners" in by_name and "All staff" in by_name

        second = t.sync(roster)
        assert second.status == "ok" and second.plan.empty
