"""Teams: creation from a group, archiving, the retries while a new group settles, and polling.

Graph may answer 404 for up to 15 minutes after a group is created: team creation is retried a few
times, then left *pending* for the next run rather than failed. An accepted creation (202 and a
`Location`) is polled until Teams reports it done, so the next run does not ask for the same team
again. An archive is confirmed by the applier (`live.confirm_archives`) before the group is renamed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from smartsync.engine.apply.outcome import Call, Outcome, Progress, header
from smartsync.engine.apply.policy import ApplyPolicy
from smartsync.engine.apply.requests import Requests
from smartsync.graph import GraphClient, GraphRequest, GraphResult
from smartsync.graph.consistency import ReplicationWait, team_not_ready


class Teams:
    def __init__(
        self,
        client: GraphClient,
        requests: Requests,
        policy: ApplyPolicy,
        sleep: Callable[[float], None],
        replication: ReplicationWait,
        progress: Progress | None = None,
    ) -> None:
        self.client = client
        self.requests = requests
        self.policy = policy
        self.sleep = sleep
        self.replication = replication  # the budget for waiting on new groups to reach Teams
        self.progress = progress
        self.operations: dict[int, str] = {}  # id(outcome) -> teamsAsyncOperation path to poll

    def settle_team(self, call: Call, result: GraphResult) -> list[Call]:
        outcome, error = call.outcome, result.error
        if error is None:
            location = header(result.headers, "location")
            if result.status == 202 and location:
                self.operations[id(outcome)] = location
            return []
        if error.status == 409:  # already a team (an earlier, interrupted run)
            return []
        if team_not_ready(error):  # the group has not reached Teams yet
            outcome.result, outcome.error = "pending", str(error)
            return []
        outcome.fail(error)
        return []

    def finish(self, outcomes: list[Outcome]) -> None:
        """Retry creations still pending on a new group, then wait for the accepted ones."""
        self._retry_new(outcomes)
        self._wait(outcomes)

    def _retry_new(self, outcomes: list[Outcome]) -> None:
        waiting = [o for o in outcomes if o.result == "pending"]
        attempt = 0
        while waiting:
            attempt += 1
            # The configured retries first, then growing pauses within the team budget.
            retries = self.policy.team_retries
            pause = self.policy.team_retry_seconds if attempt <= retries else self.replication.next_pause()
            if pause is None:
                break
            if self.progress is not None and attempt > retries:
                budget = self.replication.budget_seconds
                self.progress(
                    "Waiting for new groups to reach Teams", int(self.replication.waited), max(1, int(budget))
                )
            self.sleep(pause)
            # The oldest group first, alone: the others are sent once Teams took that one.
            self._send(waiting[:1])
            if waiting[0].result != "pending":
                self._send(waiting[1:])
            waiting = [o for o in waiting if o.result == "pending"]
        for outcome in waiting:
            outcome.result = "skipped"
            outcome.error = (
                "pending: Graph has not finished setting up the new group yet; the next run creates the team"
            )

    def _send(self, outcomes: list[Outcome]) -> None:
        calls = [c for o in outcomes for c in self.requests.calls(o.change, o, o.object_id)]
        for call, result in zip(calls, self.client.batch([c.request for c in calls]), strict=True):
            call.outcome.result, call.outcome.error = "ok", None
            self.settle_team(call, result)

    def _wait(self, outcomes: list[Outcome]) -> None:
        """Poll accepted team creations (202 + Location) until Teams reports them done.

        A team shows up in the group's resourceProvisioningOptions only once provisioning finishes;
        waiting here keeps the next run from asking for the same team again.
        """
        waiting = [o for o in outcomes if id(o) in self.operations and o.result == "ok"]
        deadline = time.monotonic() + self.policy.team_poll_timeout
        while waiting and time.monotonic() < deadline:
            self.sleep(self.policy.team_poll_seconds)
            requests = [GraphRequest("GET", self.operations[id(o)]) for o in waiting]
            still: list[Outcome] = []
            for outcome, result in zip(waiting, self.client.batch(requests), strict=True):
                body = result.body if isinstance(result.body, dict) else {}
                status = str(body.get("status") or "")
                if result.error is not None and result.error.status != 404:
                    continue  # cannot tell; the team was accepted, the next run checks again
                if status == "failed":
                    error = body.get("error") or {}
                    outcome.fail(
                        f"Teams could not create the team: {error.get('message') or error or status}"
                    )
                elif status != "succeeded":
                    still.append(outcome)
            waiting = still
