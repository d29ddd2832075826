"""Refusing what a school did not mean: a vanishing cohort, too many removals, a missing permission,
config mistakes that would silently change behaviour; and reading without the secret.

Runs go through the real CLI over HTTPS against the simulator's server; the tenant's write count
shows that nothing was written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from harness import AUTUMN, tenant
from served import served_tenant_section
from test_reliability_support import mini_roster

from smartsync.cli import cli
from smartsync.config import SafetyConfig
from smartsync.demo import DEMO_SECRET, demo_seed
from smartsync.engine.plan import Change, Plan
from smartsync.engine.safety import check
from smartsync.engine.state import UserRef
from smartsync.roster.model import Roster
from smartsync.roster.sample import write_export
from smartsync.simulator import Simulator
from smartsync.simulator.server import RunningServer, start_server

ROSTER = mini_roster(classes=6, learners_per_class=12)  # Year 7: classes 0, 2, 4 = 36 learners


def without_year_7(roster: Roster) -> Roster:
    gone = {p.id for p in roster.people if p.year_group == "Year 7"}
    return Roster(
        tuple(p for p in roster.people if p.id not in gone),
        roster.groups,
        tuple(m for m in roster.memberships if m.user_id not in gone),
    )


@pytest.fixture
def server() -> Iterator[RunningServer]:
    running = start_server(lambda base: Simulator(demo_seed(ROSTER, missing_every=None), base_url=base))
    try:
        yield running
    finally:
        running.shutdown()


def write_config(tmp_path: Path, server: RunningServer, **extra: Any) -> Path:
    write_export(ROSTER, tmp_path / "export")
    config = {
        "tenant": served_tenant_section(server.base_url, server.ca_cert),
        "source": {"type": "realsmart-export", "path": "export"},
        "school": {"code": "MIN", "name": "Mini School"},
        "year": {"academic_year": "2025-26", "quiet_from": None},
        "sync": {"teams": {"enabled": False}},
        "journal": {"path": str(tmp_path / "log" / "changes.jsonl")},
        **extra,
    }
    path = tmp_path / "smartsync.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    path.chmod(0o600)
    return path


def smartsync(config: Path, *args: str, secret: str | None = DEMO_SECRET) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], env={"SMARTSYNC_CLIENT_SECRET": secret})


def journal(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "log" / "changes.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_a_year_group_missing_from_the_export_is_refused_naming_it_and_nothing_is_written(
    tmp_path: Path, server: RunningServer
) -> None:
    config = write_config(tmp_path, server)
    assert smartsync(config, "run").exit_code == 0
    write_export(without_year_7(ROSTER), tmp_path / "export")
    writes = server.simulator.stats()["writes"]

    refused = smartsync(config, "run")

    assert refused.exit_code == 4, refused.output
    first, reason = refused.output.splitlines()[:2]
    assert first == "Refused: max_cohort_loss_fraction — nothing was written", first
    assert "'Year 7 learners' (MIN year group, group) would lose 36 of its 36 people (100%)" in reason
    assert "'Year 7' (MIN year group, admin unit) would lose 36 of its 36 people" in reason
    assert "limit 50%" in reason and "--force" in reason
    assert "Changes it would have made" in refused.output
    assert server.simulator.stats()["writes"] == writes
    end = journal(tmp_path)[-1]
    assert end["event"] == "run.end" and end["status"] == "refused" and end["written"] == 0

    planned = smartsync(config, "plan", "--json")
    assert planned.exit_code == 4
    document = json.loads(planned.stdout)
    assert document["refused"]["limit"] == "max_cohort_loss_fraction" and document["refused"]["value"] == 1.0

    forced = smartsync(config, "run", "--force")
    assert forced.exit_code == 0, forced.output
    assert journal(tmp_path)[-1]["written"] > 0


def test_in_the_september_rollover_a_year_group_may_go(tmp_path: Path) -> None:
    with tenant(tmp_path, ROSTER, missing_every=None, sync={"teams": {"enabled": False}}) as t:
        assert t.sync(ROSTER, today=date(2025, 9, 1)).status == "ok"
        gone = t.sync(without_year_7(ROSTER), today=date(2025, 9, 3), dry_run=True)
        assert gone.refused is None or gone.refused.limit != "max_cohort_loss_fraction"
        later = t.sync(without_year_7(ROSTER), today=AUTUMN, dry_run=True)
        assert later.refused is not None and later.refused.limit == "max_cohort_loss_fraction"


def _removal_plan(removals: int, managed: int) -> Plan:
    users = tuple(UserRef(f"u{n}@school.example", f"id-{n}") for n in range(removals))
    change = Change("group.members.remove", "NFA-class-1", name="7A/Ma1", object_id="g1", users=users)
    return Plan(changes=(change,), managed_memberships=managed, roster_people=100, matched_people=100)


def test_an_absolute_ceiling_on_membership_removals_beside_the_fraction() -> None:
    limits = SafetyConfig()
    assert limits.max_membership_removals == 500 and limits.max_cohort_loss_fraction == 0.5
    assert check(_removal_plan(500, 10_000), limits) is None  # 5 %: within both limits
    refusal = check(_removal_plan(501, 10_000), limits)
    assert refusal is not None and refusal.limit == "max_membership_removals"
    assert "Refusing to remove 501 memberships" in refusal.message and "limit 500" in refusal.message
    assert check(_removal_plan(501, 10_000), SafetyConfig(max_membership_removals=1000)) is None


def test_a_missing_permission_is_found_before_the_first_write(tmp_path: Path) -> None:
    seed = demo_seed(ROSTER, missing_every=None)
    # Everything needed for reading is granted; class teams' education classes need EduRoster.
    seed["app"]["roles"] = [r for r in seed["app"]["roles"] if r != "EduRoster.ReadWrite.All"]
    running = start_server(lambda base: Simulator(seed, base_url=base, time_scale=100.0))
    try:
        config = write_config(tmp_path, running, sync={"teams": {"creation_retry_seconds": 0.1}})
        result = smartsync(config, "run")
        assert result.exit_code == 3, result.output
        assert "EduRoster.ReadWrite.All (needed by class teams (educationClass template))" in result.output
        assert "Nothing was written: The app lacks" in result.output
        assert running.simulator.stats()["writes"] == 0
        end = journal(tmp_path)[-1]
        assert end["status"] == "failed" and end["written"] == 0

        planned = smartsync(config, "plan")  # the plan still shows, with the warning
        assert planned.exit_code == 0, planned.output
        assert "`run` would stop before writing" in planned.output
        assert running.simulator.stats()["writes"] == 0
    finally:
        running.shutdown()


def test_a_key_given_twice_is_an_error_naming_both_lines(tmp_path: Path, server: RunningServer) -> None:
    config = write_config(tmp_path, server)
    text = config.read_text(encoding="utf-8")
    config.write_text(text + "sync:\n  prefix: other\n", encoding="utf-8")
    first = 1 + next(i for i, line in enumerate(text.splitlines()) if line.startswith("sync:"))
    second = len(text.splitlines()) + 1

    result = smartsync(config, "validate")

    assert result.exit_code == 2
    assert f"the key sync is given twice (lines {first} and {second})" in result.output


EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.yaml"


def test_a_readable_config_with_a_literal_secret_warns_even_with_a_commented_out_reference(
    tmp_path: Path,
) -> None:
    # The shipped example holds a commented-out `passphrase: ${...}` line: it must not hide the secret.
    text = EXAMPLE.read_text(encoding="utf-8")
    assert "passphrase: ${" in text
    text = text.replace("${SMARTSYNC_CLIENT_SECRET}", "literal-Secret-123").replace(
        "path: /var/lib/smartsync/export", f"path: {tmp_path}"
    )
    config = tmp_path / "smartsync.yaml"
    config.write_text(text, encoding="utf-8")
    config.chmod(0o644)
    result = smartsync(config, "validate", secret=None)
    assert "holds a secret and is readable by others (mode 644)" in result.output
    assert "tenant.client_secret" in result.output and "literal-Secret-123" not in result.output


def test_a_readable_client_secret_file_warns(tmp_path: Path, server: RunningServer) -> None:
    secret = tmp_path / "secret"
    secret.write_text(DEMO_SECRET, encoding="utf-8")
    secret.chmod(0o644)
    config = write_config(tmp_path, server)
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    del data["tenant"]["client_secret"]
    data["tenant"]["client_secret_file"] = str(secret)
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = smartsync(config, "validate", secret=None)
    assert f"tenant.client_secret_file {secret} is readable by others (mode 644)" in result.output
    secret.chmod(0o600)
    assert "is readable by others" not in smartsync(config, "validate", secret=None).output


def test_log_and_validate_work_without_the_secret_but_run_needs_it(
    tmp_path: Path, server: RunningServer
) -> None:
    config = write_config(tmp_path, server)
    assert smartsync(config, "run").exit_code == 0

    logged = smartsync(config, "log", secret=None)
    assert logged.exit_code == 0, logged.output
    assert "run.end" in logged.output
    validated = smartsync(config, "validate", secret=None)
    assert validated.exit_code == 0, validated.output

    run = smartsync(config, "run", secret=None)
    assert run.exit_code == 2
    assert "tenant.client_secret: environment variable SMARTSYNC_CLIENT_SECRET is not set" in run.output


def test_a_key_given_twice_inside_a_section_names_its_path_and_lines(tmp_path: Path) -> None:
    config = tmp_path / "smartsync.yaml"
    config.write_text(
        "tenant: {tenant_id: t, client_id: c}\nsource: {path: export}\nschool: {code: NFA}\n"
        "sync:\n  groups:\n    enabled: true\n    kinds: [class]\n    enabled: false\n",
        encoding="utf-8",
    )
    result = smartsync(config, "validate", secret=None)
    assert result.exit_code == 2
    assert "the key sync.groups.enabled is given twice (lines 6 and 8)" in result.output


@pytest.mark.parametrize(
    ("school", "error"),
    [
        ({"codes": []}, "school.codes must be a list of one or more school codes"),
        ({"code": "XYZ", "codes": ["NFA", "SPS"]}, "school.code must be one of school.codes"),
        ({"codes": ["NFA", "nfa"]}, "school.codes lists a code twice"),
        ({"codes": ["NFA", "S-1"]}, "'S-1' is not a school code"),
    ],
)
def test_school_codes_are_checked(tmp_path: Path, school: dict[str, Any], error: str) -> None:
    config = tmp_path / "smartsync.yaml"
    data = {"tenant": {"tenant_id": "t", "client_id": "c"}, "source": {"path": "export"}, "school": school}
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = smartsync(config, "validate", secret=None)
    assert result.exit_code == 2 and error in result.output, result.output


def test_validate_names_the_schools_a_run_would_leave_out_or_refuse(
    tmp_path: Path, server: RunningServer
) -> None:
    config = write_config(tmp_path, server)
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["school"] = {"codes": ["MIN", "SPS"]}
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    other = Roster(
        (*ROSTER.people, replace(ROSTER.people[0], id="X1", email="x1@other.example", school="XYZ")),
        ROSTER.groups,
        ROSTER.memberships,
    )
    write_export(other, tmp_path / "export")
    result = smartsync(config, "validate", secret=None)
    assert result.exit_code == 0, result.output
    assert "left out because this config owns only MIN, SPS" in result.output
    assert "XYZ (1 person, 0 groups)" in result.output
    assert "warning: school SPS vanished from the export" in result.output
