"""The change report: what an admin reads in the cron mail."""

from __future__ import annotations

import io

from smartsync.engine.apply import Outcome
from smartsync.engine.plan import Change, Plan
from smartsync.engine.run import RunResult
from smartsync.engine.safety import Refusal
from smartsync.engine.state import GroupSpec, LeftAlone, Notice, UserRef
from smartsync.report.model import build, summary_of
from smartsync.report.text import make_console, render

AMY = UserRef("amy@nfa.example", "1")
TESS = UserRef("tess@nfa.example", "2")
SPEC = GroupSpec(
    "NFA-class-2025-1",
    "class",
    "7A/Ma1 Maths",
    "microsoft365",
    "smartsync-NFA-class-2025-1",
    team_template="educationClass",
    education_class=True,
)
PLAN = Plan(
    changes=(
        Change("group.create", SPEC.key, name=SPEC.display_name, users=(AMY,), owners=(TESS,), group=SPEC),
        Change("group.members.add", SPEC.key, name=SPEC.display_name, users=(UserRef("b@nfa.example", "3"),)),
        Change("group.members.add", SPEC.key, name=SPEC.display_name, users=(UserRef("c@nfa.example", "4"),)),
        Change("team.create", SPEC.key, name=SPEC.display_name, template="educationClass"),
        Change("group.delete", "NFA-class-2024-9", name="Old class", object_id="g9"),
    ),
    notices=(Notice("user_not_found", "learner No Account has no Entra user", roster_id="L5"),),
    roster_people=3,
    matched_people=2,
    extra={
        "objects": {SPEC.key: {"year": "Year 7", "school": "NFA"}},
        "people": {"2": "Tess Teacher"},
    },
)


def rendered(result: RunResult, **options: bool) -> str:
    out = io.StringIO()
    render(make_console(out), result, **options)
    return out.getvalue()


def test_one_line_per_object_in_words_with_its_key() -> None:
    text = rendered(RunResult(plan=PLAN, dry_run=True))
    assert "\x1b[" not in text  # not a terminal: no colour codes
    assert text.splitlines()[0] == "Plan (dry run: nothing written)"
    # The create and both 20-at-a-time additions read as one line, counted in people.
    assert "+ 7A/Ma1 Maths  NFA-class-2025-1  class team, new: 3 members, owner T. Teacher" in text
    assert "− Old class  NFA-class-2024-9: group deleted" in text
    assert "learner No Account has no Entra user [roster id L5]" in text
    assert "Changes it would make" in text
    assert text.splitlines()[-1] == (
        "Would change 2 groups: 3 group memberships added; 1 owner added; 1 team created; "
        "nothing was written. Apply with `smartsync run`."
    )


def test_two_objects_with_one_display_name_are_never_confused() -> None:
    learners = [UserRef(f"p{i}@nfa.example", f"p{i}") for i in range(3)]
    plan = Plan(
        changes=(
            Change("group.members.add", "NFA-all_learners", name="All learners", users=tuple(learners[:2])),
            Change("group.delete", "SPS-all_learners", name="All learners", object_id="x"),
            Change("group.members.remove", "NFA-all_learners", name="All learners", users=(learners[2],)),
        ),
        roster_people=3,
        matched_people=3,
    )
    lines = rendered(RunResult(plan=plan, dry_run=True)).splitlines()
    ours = [line for line in lines if "NFA-all_learners" in line]
    theirs = [line for line in lines if "SPS-all_learners" in line]
    assert ours == ["      ~ All learners  NFA-all_learners: +2 −1 members (p0, p1; −p2)"]
    assert theirs == ["      − All learners  SPS-all_learners: group deleted"]
    assert "School NFA" in lines and "School SPS" in lines


def test_failures_come_first_with_graphs_message_and_the_people() -> None:
    outcomes = [Outcome(c) for c in PLAN.changes]
    outcomes[1].fail("Graph 400 Request_BadRequest: bad reference (request-id 42)")
    text = rendered(RunResult(plan=PLAN, dry_run=False, outcomes=outcomes, run_id="R1"))
    lines = text.splitlines()
    assert lines[0].startswith("Partly applied: 1 change failed, the rest was applied. Next: ")
    assert "smartsync log --run R1" in lines[0]
    failure = "  x 7A/Ma1 Maths  NFA-class-2025-1: add members failed for b: Graph 400 Request_BadRequest"
    assert any(line.startswith(failure) and "request-id 42" in line for line in lines)
    assert text.index("Failures (1)") < text.index("Changes\n")
    assert "new: 2 members, owner T. Teacher [partly failed]" in text
    assert lines[-1].endswith("; 1 failed.")
    # The counts are what was applied: the failed addition is not among them.
    result = RunResult(plan=PLAN, dry_run=False, outcomes=outcomes)
    assert summary_of(build(result))["members_added"] == result.summary()["members_added"] == 2


def test_a_run_where_nothing_was_applied_starts_with_failed() -> None:
    outcomes = [Outcome(c) for c in PLAN.changes]
    for outcome in outcomes:
        outcome.fail("Graph 503 ServiceUnavailable")
    text = rendered(RunResult(plan=PLAN, dry_run=False, outcomes=outcomes))
    assert text.startswith("Failed: none of the 5 changes was applied. Next: ")


def test_a_refusal_says_so_on_its_first_line_and_changes_read_would_have() -> None:
    refusal = Refusal("max_deletes", 37, 20, "Refusing to delete or archive 37 objects (group; limit 20).")
    text = rendered(RunResult(plan=PLAN, dry_run=False, refused=refusal))
    lines = text.splitlines()
    assert lines[0] == "Refused: max_deletes — nothing was written"
    assert lines[1] == "  Refusing to delete or archive 37 objects (group; limit 20)."
    assert "Changes it would have made" in text
    assert lines[-1].startswith("Would have changed 2 groups: ")


def test_long_lists_fold_and_verbose_shows_them_all() -> None:
    pupils = tuple(UserRef(f"pupil{i:02}@nfa.example", f"u{i}") for i in range(20))
    plan = Plan(
        changes=(Change("group.members.remove", "NFA-year-Year_7", name="Year 7", users=pupils),),
        roster_people=1,
        matched_people=1,
    )
    short = rendered(RunResult(plan=plan, dry_run=True))
    assert "−20 members (−pupil00, −pupil01, −pupil02, −pupil03, −pupil04, −pupil05, −… and 14 more)" in short
    full = rendered(RunResult(plan=plan, dry_run=True), verbose=True)
    assert "−pupil19)" in full and "more" not in full


def test_many_objects_fold_into_counts_per_kind() -> None:
    changes = tuple(
        Change("group.members.add", f"NFA-class-2025-{i}", name=f"7A/C{i}", users=(AMY,)) for i in range(70)
    )
    plan = Plan(changes=changes, roster_people=1, matched_people=1)
    text = rendered(RunResult(plan=plan, dry_run=True))
    assert "Objects per kind" in text and "7A/C1 " not in text
    assert "70 objects to list" in text
    assert "7A/C69" in rendered(RunResult(plan=plan, dry_run=True), verbose=True)


def test_counts_of_other_schools_left_alone_are_shown_when_the_plan_has_them() -> None:
    seen = (LeftAlone("group", "smartsync", "SPS", 9), LeftAlone("admin_unit", "smartsync", "SPS", 2))
    plan = Plan(changes=PLAN.changes, roster_people=1, matched_people=1, left_alone=seen)
    text = rendered(RunResult(plan=plan, dry_run=True))
    assert "Left alone: 9 groups and 2 admin units of other schools or prefixes (smartsync/SPS)" in text


def test_quiet_keeps_the_summary_and_counts_warnings() -> None:
    text = rendered(RunResult(plan=PLAN, dry_run=True), quiet=True)
    assert "Group members" in text and "NFA-class-2025-1  class" not in text
    assert "1 warning (" in text


def test_rich_markup_in_names_is_printed_as_it_is() -> None:
    plan = Plan(
        changes=(Change("group.members.add", "NFA-group-9", name="[bold]Chess[/bold] <club>", users=(AMY,)),),
        roster_people=1,
        matched_people=1,
    )
    assert "[bold]Chess[/bold] <club>  NFA-group-9: +1 member (amy)" in rendered(
        RunResult(plan=plan, dry_run=True)
    )


def test_renames_owner_changes_and_skipped_changes_in_words() -> None:
    teachers = [UserRef(f"t{i}@nfa.example", f"t{i}") for i in range(3)]
    plan = Plan(
        changes=(
            Change("group.update", "NFA-mentor-7", name="7B", set_fields=(("displayName", "7B Tutor"),)),
            Change("group.owners.add", "NFA-mentor-7", name="7B Tutor", users=tuple(teachers[:2])),
            Change("group.owners.remove", "NFA-mentor-7", name="7B Tutor", users=(teachers[2],)),
            Change("group.members.add", "NFA-mentor-8", name="8B", users=(AMY,)),
        ),
        roster_people=1,
        matched_people=1,
        extra={
            "objects": {"NFA-mentor-7": {"year": "Year 7", "was": "7B"}},
            "people": {"t0": "Ann Owen", "t1": "Bo Li", "t2": "Cy Day"},
        },
    )
    outcomes = [Outcome(c) for c in plan.changes]
    outcomes[3].result = "skipped"
    outcomes[3].error = "not sent: Graph refused an earlier change for lack of permission"
    text = rendered(RunResult(plan=plan, dry_run=False, outcomes=outcomes))
    assert "~ 7B Tutor  NFA-mentor-7: renamed from 7B; owners A. Owen, B. Li; no longer owner: C. Day" in text
    assert "x 8B  NFA-mentor-8: add members skipped for amy: not sent: Graph refused" in text
    assert text.splitlines()[-1].endswith("; 0 failed, 1 skipped.")
