"""The change report: what an admin reads in the cron mail."""

from __future__ import annotations

import io

from smartsync.engine.apply import Outcome
from smartsync.engine.plan import Change, Plan
from smartsync.engine.run import RunResult
from smartsync.engine.safety import Refusal
from smartsync.engine.state import GroupSpec, Notice, UserRef
from smartsync.report import make_console, render

AMY = UserRef("amy@nfa.example", "1")
TESS = UserRef("tess@nfa.example", "2")
SPEC = GroupSpec("NFA-class-2025-1", "class", "7A/Ma1 Maths", "microsoft365", "smartsync-NFA-class-2025-1")
PLAN = Plan(
    changes=(
        Change("group.create", SPEC.key, name=SPEC.display_name, users=(AMY,), owners=(TESS,), group=SPEC),
        Change("group.members.add", SPEC.key, name=SPEC.display_name, users=(UserRef("b@nfa.example", "3"),)),
        Change("group.members.add", SPEC.key, name=SPEC.display_name, users=(UserRef("c@nfa.example", "4"),)),
        Change("group.delete", "NFA-class-2024-9", name="Old class", object_id="g9"),
    ),
    notices=(Notice("user_not_found", "learner No Account has no Entra user", roster_id="L5"),),
    roster_people=3,
    matched_people=2,
)


def rendered(result: RunResult, **options: bool) -> str:
    out = io.StringIO()
    render(make_console(out), result, **options)
    return out.getvalue()


def test_plain_text_report_groups_changes_per_object_with_signs() -> None:
    text = rendered(RunResult(plan=PLAN, dry_run=True))
    assert "\x1b[" not in text  # not a terminal: no colour codes
    assert "Plan (dry run: nothing written)" in text
    assert "7A/Ma1 Maths (NFA-class-2025-1)" in text
    assert "+ create microsoft365 group (2): tess@nfa.example (owner), amy@nfa.example" in text
    # The two 20-at-a-time additions read as one line.
    assert "+ add members (2): b@nfa.example, c@nfa.example" in text
    assert "- delete group" in text
    assert "learner No Account has no Entra user [roster id L5]" in text
    assert "Dry run: nothing was written" in text


def test_failures_and_refusals_are_spelled_out() -> None:
    outcomes = [Outcome(c) for c in PLAN.changes]
    outcomes[1].fail("Graph 400 Request_BadRequest: bad reference (request-id 42)")
    text = rendered(RunResult(plan=PLAN, dry_run=False, outcomes=outcomes))
    assert "Failures (1)" in text and "request-id 42" in text
    assert "[1 failed]" in text
    assert "Applied 3 of 4 changes; status partial." in text
    refusal = Refusal("max_deletes", 37, 20, "Refusing to delete or archive 37 objects (group; limit 20).")
    text = rendered(RunResult(plan=PLAN, dry_run=False, refused=refusal))
    assert "Refused: Refusing to delete or archive 37 objects" in text


def test_quiet_keeps_the_summary_and_counts_warnings() -> None:
    text = rendered(RunResult(plan=PLAN, dry_run=True), quiet=True)
    assert "Group members" in text and "7A/Ma1 Maths (NFA" not in text
    assert "1 warning (" in text
