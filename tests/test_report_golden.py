"""The change report of the bundled sample school, compared with golden files reviewed by eye.

Four scenarios run the real pipeline against the simulated tenant: a first run, a typical day (two
moves, one leaver, one joiner, a teacher swap), the September rollover (forced past the safety
limit, listed in full with --verbose) and the same rollover refused. After a deliberate change to
the report, regenerate the files with `SMARTSYNC_UPDATE_GOLDEN=1 pytest tests/test_report_golden.py`
and read the diff before committing it.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from report_scenarios import Scenarios, run_scenarios

from smartsync.engine.run import RunResult
from smartsync.report.model import build, summary_of
from smartsync.report.text import make_console, render

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("SMARTSYNC_UPDATE_GOLDEN") == "1"


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> Scenarios:
    return run_scenarios(tmp_path_factory.mktemp("report"))


def rendered(result: RunResult, *, verbose: bool = False) -> str:
    out = io.StringIO()
    render(make_console(out), result, verbose=verbose)
    return out.getvalue()


CASES = {
    "first_run": ("first_run", False),
    "typical_day": ("typical_day", False),
    "rollover": ("rollover", True),
    "refusal": ("refusal", False),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_report_matches_its_golden_file(scenarios: Scenarios, name: str) -> None:
    attribute, verbose = CASES[name]
    text = rendered(getattr(scenarios, attribute), verbose=verbose)
    path = GOLDEN / f"{name}.txt"
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with SMARTSYNC_UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text(encoding="utf-8"), f"the report differs from {path.name}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_people_counts_equal_the_summary(scenarios: Scenarios, name: str) -> None:
    result: RunResult = getattr(scenarios, CASES[name][0])
    summary = result.summary()
    assert summary_of(build(result)) == {key: summary[key] for key in summary_of(build(result))}


def test_first_run_of_a_big_school_shows_counts_and_points_to_the_full_list(scenarios: Scenarios) -> None:
    text = rendered(scenarios.first_run)
    lines = text.splitlines()
    assert len(lines) < 45, "a first run prints the summary, not 930 lines"
    assert "Objects per kind" in text and "Classes" in text
    assert "`-v` (`--verbose`) lists each one, and `--html FILE` writes a page" in text
    assert "Warnings (3)" in text and "[roster id " in text
    assert lines[-1] == (
        "Changed 190 groups and 10 units: 4,020 group memberships added; 198 owners added; "
        "595 unit memberships added; 155 teams created; 0 failed."
    )


def test_a_typical_day_reads_as_moves_a_leaver_a_joiner_and_a_teacher_swap(scenarios: Scenarios) -> None:
    text = rendered(scenarios.typical_day)
    facts = scenarios.day_facts
    leaver = facts["leaver"].split("@")[0]
    moved_out = next(line for line in text.splitlines() if f"{facts['moved_from']}  NFA-class-" in line)
    moved_in = next(line for line in text.splitlines() if f"{facts['moved_to']}  NFA-class-" in line)
    assert "−2 members" in moved_out and "+2 members" in moved_in
    assert sum(1 for line in text.splitlines() if f"−{leaver}" in line) >= 3
    assert "+1 member (new.joiner)" in text
    swap = next(line for line in text.splitlines() if f"{facts['teacher_class']}  NFA-class-" in line)
    assert "owner " in swap and " → " in swap
    assert text.index("Changes\n") < text.index("Warnings (3)")


def test_a_refusal_says_so_first_and_lists_what_it_would_have_done(scenarios: Scenarios) -> None:
    text = rendered(scenarios.refusal, verbose=True)
    lines = text.splitlines()
    assert lines[0] == "Refused: max_deletes — nothing was written"
    assert "Refusing to delete or archive 155 objects" in lines[1] and "--force" in lines[1]
    assert "Changes it would have made" in text
    assert lines[-1].startswith("Would have changed 310 groups") and lines[-1].endswith(
        "nothing was written."
    )
    archive = next(line for line in lines if "− Archived 2025-26: 7x/Ma1 Maths  NFA-class-2025-" in line)
    assert archive.endswith("team archived, members kept")
