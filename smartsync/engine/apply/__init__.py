"""Apply a plan through the Graph client, recording the outcome of every change.

Changes run in four phases so that Graph's ordering rules hold: creations; renames and additions
(owners before members); removals; deletions. Within a phase every request goes out in `$batch`
round trips of 20. A failed change does not stop the run: it is recorded, later changes that depend
on it are skipped, and the next run picks it up. Two rules make reruns safe: a creation whose
response was lost is looked up by its marker before anything is created again, and a bulk addition
Graph refuses (one member already there, one user gone) is retried one reference at a time, where
"already there" counts as done.

One module a job:
- `runner`: the phases, their slices of about 100 requests, and the follow-up rounds;
- `requests`: the Graph request each change sends (bodies, binds, paths);
- `memberships`: owner and member additions sharing PATCHes, their one-at-a-time fallback, and
  the lookups that settle membership changes whose answer was lost;
- `lookups`: creations whose answer was lost, found again by their marker;
- `teams`: team creation and archiving, the retries while a new group settles, and polling;
- `accounts`: the requests of `user.*` changes (sync.users) and the hand-out row of each new account;
- `outcome`: what happened to each change, and how to read a Graph error;
- `policy`: the choices from the config that change what is sent or how long to wait.
"""

from smartsync.engine.apply.outcome import Outcome
from smartsync.engine.apply.policy import ApplyPolicy
from smartsync.engine.apply.runner import Applier

__all__ = ["Applier", "ApplyPolicy", "Outcome"]
