"""The apply policy: the config's choices about how changes are sent, gathered in one value.

What a change does is in the plan (the bodies' contents, such as a Microsoft 365 group's behaviour
options, travel in the group's spec); how long to keep trying is here, built from the config in one
place so that the applier takes one value, not a dozen settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from smartsync.config import Config


@dataclass(frozen=True)
class ApplyPolicy:
    # A new group may not be ready for a team for up to 15 minutes: retry this often, this far apart.
    team_retries: int = 3
    team_retry_seconds: float = 10.0
    # Accepted team creations are polled this often, for at most this long.
    team_poll_seconds: float = 5.0
    team_poll_timeout: float = 120.0
    # False when this tenant refuses owners@odata.bind in a PATCH (found by preflight, or met in an
    # earlier run): owners then go one `POST .../owners/$ref` each, members still 20 to a PATCH.
    owners_in_patch: bool = True

    @classmethod
    def from_config(cls, config: Config, *, owners_in_patch: bool = True) -> ApplyPolicy:
        teams = config.sync.teams
        return cls(
            team_retries=teams.creation_retries,
            team_retry_seconds=teams.creation_retry_seconds,
            team_poll_seconds=teams.poll_seconds,
            team_poll_timeout=teams.poll_timeout_seconds,
            owners_in_patch=owners_in_patch,
        )
