"""Managed groups Graph will not let smartsync write: left out of the plan, with a warning.

A group smartsync created can later become one that an app may not change: mail-enabled (an
Exchange admin turned a security group into a mail-enabled one), synced from on-premises Active
Directory, or given dynamic membership. Every write to it would be refused, run after run. The
reader marks such groups (`GroupState.unwritable`); this module takes them out of both sides of the
diff, so the plan neither changes, deletes nor recreates them, and says so each run.
"""

from __future__ import annotations

from dataclasses import replace

from smartsync.engine.state import ActualState, DesiredState, Notice


def hold_unwritable(want: DesiredState, have: ActualState) -> tuple[DesiredState, ActualState]:
    """`want` and `have` without the groups Graph will not let smartsync write, and a notice for each."""
    held = {key: group for key, group in have.groups.items() if group.unwritable}
    if not held:
        return want, have
    notices = [
        Notice(
            "group_not_writable",
            f"Group '{group.display_name}' ({key}) {group.unwritable}: smartsync leaves it as it is. Undo "
            "the change in Entra to have it synced again, or delete it to let smartsync recreate it.",
        )
        for key, group in sorted(held.items())
    ]
    want = replace(want, groups={k: v for k, v in want.groups.items() if k not in held})
    have = replace(
        have,
        groups={k: v for k, v in have.groups.items() if k not in held},
        notices=(*have.notices, *notices),
    )
    return want, have


__all__ = ["hold_unwritable"]
