"""The HTML page without a browser: escaping, self-containment, file mode and pruning."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path

from test_report import PLAN

from smartsync.engine.plan import Change, Plan
from smartsync.engine.run import RunResult
from smartsync.engine.state import UserRef
from smartsync.report.html import prune_pages, render_log_page, render_result_page, run_page_path, write_page

EVIL = "<script>alert(1)</script>"


def test_names_are_escaped_and_the_page_needs_nothing_from_outside() -> None:
    person = UserRef("x@nfa.example", "9")
    plan = Plan(
        changes=(Change("group.members.add", "NFA-class-2025-7", name=EVIL, users=(person,)),),
        roster_people=1,
        matched_people=1,
        extra={"people": {"9": EVIL}},
    )
    page = render_result_page(RunResult(plan=plan, dry_run=True), school=EVIL, generated="")
    assert EVIL not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<script") == 1
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "no external assets"
    script = page.split("<script>", 1)[1].split("</script>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in page  # the CSP allows exactly the page's own script


def test_without_script_every_row_is_shown_and_the_filters_stay_hidden() -> None:
    page = render_result_page(RunResult(plan=PLAN, dry_run=True), generated="")
    rows = re.findall(r"<tr data-row[^>]*>", page)
    assert len(rows) == 2 and not any(" hidden" in row for row in rows)
    assert '<form class="filters" hidden>' in page
    assert "learner No Account has no Entra user" in page and "roster id L5" in page


def test_the_log_page_shows_role_key_and_result() -> None:
    events = [
        {"time": "2026-11-27T08:00:00Z", "run": "R1", "event": "run.start", "config": "c", "dry_run": False},
        {
            "time": "2026-11-27T08:00:01Z",
            "run": "R1",
            "event": "change",
            "op": "group.owners.add",
            "key": "NFA-class-2025-1",
            "group": "7A/Ma1 Maths",
            "user": "t@nfa.example",
            "result": "failed",
            "error": "Graph 400",
        },
        {"time": "2026-11-27T08:00:02Z", "run": "R1", "event": "run.end", "status": "partial", "summary": {}},
    ]
    page = render_log_page(events, generated="")
    row = page.split('<tr data-row data-run="R1"', 1)[1].split("</tr>", 1)[0]
    assert "<td>owner</td>" in row and "NFA-class-2025-1" in row and "failed: Graph 400" in row
    assert '<td class="status-partial">partial</td>' in page


def test_pages_are_private_and_pruned_with_the_journal(tmp_path: Path) -> None:
    journal = tmp_path / "log" / "changes.jsonl"
    path = run_page_path(journal, "20261127T080000Z-abcd")
    assert path == tmp_path / "log" / "reports" / "20261127T080000Z-abcd.html"
    path.parent.mkdir(parents=True)
    write_page(path, "<p>new</p>")
    old = write_page(path.with_name("20250101T080000Z-0000.html"), "<p>old</p>")
    assert path.stat().st_mode & 0o777 == 0o600
    long_ago = time.time() - 500 * 86400
    os.utime(old, (long_ago, long_ago))
    assert prune_pages(path.parent, 400, datetime.now(UTC)) == 1
    assert path.exists() and not old.exists()


def test_a_partial_run_page_leads_with_its_failures() -> None:
    from smartsync.engine.apply import Outcome

    outcomes = [Outcome(c) for c in PLAN.changes]
    outcomes[1].fail("Graph 400 Request_BadRequest: bad reference (request-id 42)")
    page = render_result_page(RunResult(plan=PLAN, dry_run=False, outcomes=outcomes), generated="")
    assert '<div class="banner partial" id="verdict">' in page
    assert "Partly applied: 1 change failed, the rest was applied" in page
    failures = page.split('<table id="failures">', 1)[1].split("</table>", 1)[0]
    assert "b@nfa.example" in failures and "request-id 42" in failures
    assert page.index('id="failures"') < page.index('id="changes"')
