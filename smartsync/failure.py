"""The failure summary: what a non-zero exit means and what to do next, for stderr and cron's MAILTO.

When a scheduled run fails, the person reading cron's mail has only stderr: the report went to the
log. So whenever smartsync exits non-zero, the CLI ends stderr with two lines from `summary` naming
the command, the exit code and its meaning, and the next step. Nothing else is written to stderr
apart from the error itself (warnings are part of the report on stdout), so a run that succeeds sends
no mail at all.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExitMeaning:
    meaning: str
    next_step: str


EXIT_MEANINGS: dict[int, ExitMeaning] = {
    1: ExitMeaning(
        "some changes failed, or Microsoft Graph stopped answering mid-run",
        "the report in the log lists each failed change (also `smartsync log --since 1d`); "
        "the next run retries what is left",
    ),
    2: ExitMeaning(
        "usage, config or input-data error; nothing was written",
        "fix what the error above names and run it again (`smartsync validate` checks a config "
        "and its export)",
    ),
    3: ExitMeaning(
        "authentication or permission error; nothing was written",
        "run `smartsync check-credentials`; docs/setup.md explains each of its messages",
    ),
    4: ExitMeaning(
        "refused by a safety limit; nothing was written",
        "review the changes with `smartsync plan`, then run `smartsync run --force` if they are intended",
    ),
    5: ExitMeaning(
        "another run holds the lock; this run did nothing",
        "usually none, the next run continues; if this repeats, see what the run named above is doing "
        "with `smartsync log --run ID`",
    ),
    130: ExitMeaning("interrupted", "none: run it again; it picks up where this one stopped"),
}


def summary(command: str, code: int) -> list[str]:
    """Two lines for stderr: `smartsync run failed: exit 4, ...` and `Next step: ...`."""
    known = EXIT_MEANINGS.get(code)
    name = f"smartsync {command}".strip()
    if known is None:
        return [f"{name} failed: exit {code}.", "Next step: run it again with -v and read the error above."]
    return [f"{name} failed: exit {code}, {known.meaning}.", f"Next step: {known.next_step}."]


__all__ = ["EXIT_MEANINGS", "ExitMeaning", "summary"]
