"""The HTML report page in a real headless browser (Debian's `chromium`).

The pages of the sample's first run and of its September rollover are loaded with
`chromium --headless --dump-dom`, which prints the DOM after the page's script has run, with the
browser's console on stderr: the page must log nothing (no error, no Content Security Policy
refusal), show the report's counts, hide every object of other year groups when the location hash
selects one, and show a roster name `<script>alert(1)</script>` as text. CI installs chromium
(`.ci/run`); elsewhere these tests skip, naming the package.

`SMARTSYNC_UPDATE_SCREENSHOTS=1` also writes the screenshots of both pages shown in the README to
`docs/` (from the unmodified sample).
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from report_scenarios import Scenarios, run_scenarios, sample_roster

from smartsync.engine.run import RunResult
from smartsync.report.html import render_result_page, write_page
from smartsync.report.model import build
from smartsync.roster.model import Roster

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="needs Debian's chromium package (apt-get install chromium) for the headless browser test",
)
EVIL = "<script>alert(1)</script>"
DOCS = Path(__file__).parent.parent / "docs"


def browser(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = tmp_path / "chromium-profile"
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "HOME": str(tmp_path)},
        check=False,
    )


def dump(tmp_path: Path, page: Path, fragment: str = "") -> tuple[str, list[str]]:
    """The DOM after the page's script ran, and the console lines the page produced."""
    done = browser(tmp_path, "--dump-dom", page.as_uri() + fragment)
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, console


def tricky(roster: Roster) -> Roster:
    """The sample with a class and a learner named like an attack."""
    first_class = next(g for g in roster.groups if g.type == "class" and g.year_group == "Year 7")
    learner = next(p for p in roster.people if p.role == "learner" and p.year_group == "Year 8")
    groups = tuple(replace(g, name=EVIL) if g.id == first_class.id else g for g in roster.groups)
    people = tuple(replace(p, first_name=EVIL) if p.id == learner.id else p for p in roster.people)
    return replace(roster, groups=groups, people=people)


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> Scenarios:
    return run_scenarios(tmp_path_factory.mktemp("pages"), tricky(sample_roster()))


def page_of(tmp_path: Path, result: RunResult, name: str) -> Path:
    return write_page(tmp_path / f"{name}.html", render_result_page(result, school="Northfield Academy"))


def visible_rows(dom: str) -> list[str]:
    rows = re.findall(r"<tr data-row=\"\"[^>]*>", dom)
    return [row for row in rows if " hidden" not in row]


def test_first_run_page_loads_cleanly_shows_the_counts_and_escapes_names(
    tmp_path: Path, scenarios: Scenarios
) -> None:
    result = scenarios.first_run
    page = page_of(tmp_path, result, "first-run")
    assert page.stat().st_mode & 0o777 == 0o600
    dom, console = dump(tmp_path, page)
    assert console == [], console
    report = build(result)
    summary = result.summary()
    assert f'<b data-count="members_added">{summary["members_added"]:,}</b>' in dom
    assert f'<b data-count="owners_added">{summary["owners_added"]:,}</b>' in dom
    assert f'<b data-count="teams_created">{summary["teams_created"]:,}</b>' in dom
    assert f"Changes ({len(report.objects)})" in dom
    assert len(visible_rows(dom)) == len(report.objects)
    assert f"Showing {len(report.objects)} of {len(report.objects)}." in dom  # the script ran
    # The names are text: the class in its row, the learner among the people; only the page's script runs.
    assert html.escape(EVIL, quote=False) in dom
    assert f"{html.escape(EVIL, quote=False)} Maths" in dom
    assert dom.count("<script") == 1
    assert "roster id 100097" in dom  # an unmatched learner, with the roster id


def test_filtering_by_a_year_group_shows_only_its_objects(tmp_path: Path, scenarios: Scenarios) -> None:
    result = scenarios.first_run
    page = page_of(tmp_path, result, "first-run")
    dom, console = dump(tmp_path, page, "#year=Year%209")
    assert console == [], console
    year_nine = [o for o in build(result).objects if o.year == "Year 9"]
    shown = visible_rows(dom)
    assert len(shown) == len(year_nine) > 0
    assert all('data-year="Year 9"' in row for row in shown)
    assert f"Showing {len(year_nine)} of " in dom


def test_rollover_page_lists_archives_and_creations_side_by_side(
    tmp_path: Path, scenarios: Scenarios
) -> None:
    result = scenarios.refusal
    page = page_of(tmp_path, result, "rollover")
    dom, console = dump(tmp_path, page, "#kind=Classes")
    assert console == [], console
    assert "Refused: max_deletes — nothing was written" in dom
    assert "Teams to be archived (155)" in dom and "Classes to be created (155)" in dom
    assert len(visible_rows(dom)) == 310


def test_a_page_with_an_error_is_caught(tmp_path: Path) -> None:
    """The console check above can fail: a page whose script throws is seen."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><p>x</p><script>notDefined();</script>", encoding="utf-8")
    _dom, console = dump(tmp_path, page)
    assert any("notDefined" in line for line in console)


@pytest.mark.skipif(os.environ.get("SMARTSYNC_UPDATE_SCREENSHOTS") != "1", reason="writes docs/ screenshots")
def test_write_the_readme_screenshots(tmp_path: Path) -> None:
    plain = run_scenarios(tmp_path / "plain")
    for name, result, height in (("first-run", plain.first_run, 1500), ("rollover", plain.refusal, 1500)):
        page = write_page(
            tmp_path / f"{name}.html",
            render_result_page(result, school="Northfield Academy", generated=""),
        )
        target = DOCS / f"report-{name}.png"
        done = browser(
            tmp_path,
            "--hide-scrollbars",
            f"--window-size=1280,{height}",
            f"--screenshot={target}",
            page.as_uri(),
        )
        assert done.returncode == 0 and target.exists(), done.stderr[-2000:]
