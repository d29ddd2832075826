"""The words of the report: one object's line, the verdict's last line; shared by terminal and page.

Pure text from the report model (`report_model.py`), so the terminal report and the HTML page say
the same thing in the same words: `+ 7A/Ma1 Maths  NFA-class-2026-4003  class team, new: 26 members,
owners J. Kowalski, T. Kaur`.
"""

from __future__ import annotations

from collections.abc import Sequence

from smartsync.report.model import ObjectReport, PersonRef, RunReport, count

MAX_USERS_SHOWN = 6  # people named in one line before "… and 14 more"


def _names(people: Sequence[PersonRef], *, initialled: bool = False, limit: int = MAX_USERS_SHOWN) -> str:
    shown = [p.initialled if initialled else p.short for p in people[:limit]]
    if len(people) > limit:
        shown.append(f"… and {len(people) - limit} more")
    return ", ".join(shown)


def _owners_phrase(obj: ObjectReport, verbose: bool) -> str:
    limit = len(obj.owners_added) + len(obj.owners_removed) if verbose else MAX_USERS_SHOWN
    added, removed = obj.owners_added, obj.owners_removed
    if len(added) == 1 and len(removed) == 1:
        return f"owner {removed[0].initialled} → {added[0].initialled}"
    parts = []
    if added:
        parts.append(
            f"{'owner' if len(added) == 1 else 'owners'} {_names(added, initialled=True, limit=limit)}"
        )
    if removed:
        parts.append(f"no longer owner: {_names(removed, initialled=True, limit=limit)}")
    return "; ".join(parts)


def _members_phrase(obj: ObjectReport, verbose: bool) -> str:
    added, removed = obj.members_added, obj.members_removed
    if not added and not removed:
        return ""
    limit = len(added) + len(removed) if verbose else MAX_USERS_SHOWN
    counts = " ".join(
        part for part in (f"+{len(added)}" if added else "", f"−{len(removed)}" if removed else "") if part
    )
    lists = [_names(added, limit=limit)] if added else []
    if removed:
        lists.append("−" + ", −".join(_names(removed, limit=limit).split(", ")))
    word = "member" if len(added) + len(removed) == 1 else "members"
    return f"{counts} {word} ({'; '.join(lists)})"


def describe(obj: ObjectReport, *, verbose: bool = False, head: bool = True) -> str:
    """The object's line after its sign: `7A/Ma1 Maths  NFA-class-2026-4003  class team, new: …`.

    Without `head` only what changed (the page shows the name and the key in their own columns).
    """
    if not head:
        return describe(obj, verbose=verbose).split(obj.key, 1)[1].lstrip(": ")
    name = f"{obj.name}  {obj.key}"
    if obj.category == "account":
        return f"{name}: " + {
            "new": "account created (initial password in the hand-out file)",
            "changed": f"account updated ({obj.detail})" if obj.detail else "account updated",
            "disabled": "account disabled (sign-in blocked, groups left)",
            "enabled": "account enabled again",
            "deleted": "account deleted (restorable for 30 days)",
        }.get(obj.action, obj.action)
    if obj.action == "archived":
        return f"{obj.archived_name or obj.name}  {obj.key}: team archived, members kept"
    if obj.action == "deleted":
        return f"{name}: {'unit' if obj.category == 'unit' else 'group'} deleted"
    if obj.action == "restored":
        return f"{name}: {obj.kind_word} restored from deleted items (its members kept)"
    if obj.action == "new":
        what = obj.kind_word + (" team" if obj.team_created else "")
        if obj.replaces_deleted:
            what += " (replacing a deleted group that no longer fitted)"
        parts = [count(len(obj.members_added), "member")]
        owners = _owners_phrase(obj, verbose)
        if owners:
            parts.append(owners)
        return f"{name}  {what}, new: {', '.join(parts)}"
    parts = []
    if obj.old_name is not None:
        parts.append(f"renamed from {obj.old_name}")
    members = _members_phrase(obj, verbose)
    if members:
        parts.append(members)
    owners = _owners_phrase(obj, verbose)
    if owners:
        parts.append(owners)
    if obj.team_created:
        parts.append("team made")
    tried = "; ".join(dict.fromkeys(f.what for f in obj.failures))
    return f"{name}: {'; '.join(parts) or tried or 'no change'}"


def sign(obj: ObjectReport) -> str:
    return {"new": "+", "restored": "+", "archived": "−", "deleted": "−", "disabled": "−"}.get(
        obj.action, "~"
    )


def failure_lines(obj: ObjectReport) -> list[str]:
    lines = []
    for failure in obj.failures:
        who = f" for {_names(failure.people)}" if failure.people else ""
        word = "skipped" if failure.result == "skipped" else "failed"
        lines.append(f"{obj.name}  {obj.key}: {failure.what} {word}{who}: {failure.error}")
    return lines


def last_line(report: RunReport) -> str:
    """What was done, in the summary table's units: objects, then memberships, then failures."""
    t = report.totals
    objects = [count(t.groups, "group")] if t.groups else []
    if t.units:
        objects.append(count(t.units, "unit"))
    if t.accounts:
        objects.append(count(t.accounts, "account"))
    people = []
    if t.members_added or t.members_removed:
        people.append(_pair(t.members_added, t.members_removed, "group membership", "group memberships"))
    if t.owners_added or t.owners_removed:
        people.append(_pair(t.owners_added, t.owners_removed, "owner", "owners"))
    if t.unit_members_added or t.unit_members_removed:
        people.append(
            _pair(t.unit_members_added, t.unit_members_removed, "unit membership", "unit memberships")
        )
    if t.teams_created or t.teams_archived:
        people.append(_pair(t.teams_created, t.teams_archived, "team", "teams", ("created", "archived")))
    what = (
        ", ".join(objects[:-1]) + " and " + objects[-1] if len(objects) > 1 else "".join(objects)
    ) or "nothing"
    detail = f": {'; '.join(people)}" if people else ""
    if report.status == "refused":
        return f"Would have changed {what}{detail}; nothing was written."
    if report.dry_run:
        return f"Would change {what}{detail}; nothing was written. Apply with `smartsync run`."
    skipped = f", {t.skipped:,} skipped" if t.skipped else ""
    return f"Changed {what}{detail}; {t.failed:,} failed{skipped}."


def _pair(first: int, second: int, one: str, many: str, verbs: tuple[str, str] = ("added", "removed")) -> str:
    """`4,020 group memberships added, 16 removed`: the unit after the first number given."""
    numbers = [(n, verb) for n, verb in zip((first, second), verbs, strict=True) if n]
    (lead, lead_verb), rest = numbers[0], numbers[1:]
    text = f"{lead:,} {one if lead == 1 else many} {lead_verb}"
    return text + "".join(f", {n:,} {verb}" for n, verb in rest)


__all__ = ["MAX_USERS_SHOWN", "describe", "failure_lines", "last_line", "sign"]
