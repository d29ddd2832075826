"""Graph's throttling model for identity and access (DESIGN §7), measured on the simulated clock.

Per app per tenant: a resource-unit (RU) budget per 10 s that depends on the tenant's size, and a
write budget of 3,000 per 150 s. Teams creation has its own per-tenant rates, and the Teams membership
actions 4 requests a second per app on one team. Budgets are sliding windows: a request is admitted
when its cost fits in what the last window spent; otherwise the caller gets the simulated seconds
until enough of that spending has aged out, which is exactly the wait after which the same request
is admitted (unless other requests spend the budget first, as on Graph).
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass

RU_WINDOW_SECONDS = 10.0
WRITE_LIMIT = 3000
WRITE_WINDOW_SECONDS = 150.0
TEAM_PUT_PER_SECOND = 6  # PUT /groups/{id}/team, per tenant
TEAMS_POST_PER_SECOND = 10  # POST /teams, per tenant
TEAM_MEMBERS_PER_SECOND = 4  # POST /teams/{id}/members/add|remove: per app on one team
TEAM_MEMBERS_BUCKET = "team_members/"  # + the team's id
_READ_POSTS = {"getByIds": 3}  # POST actions that read: charged RU but not writes
# A hair of simulated time added to every wait so that float rounding never lands the retry just short.
_WAIT_MARGIN = 1e-6
# How far a connection's virtual clock may lag another's (the longest wait, for the write quota).
_LAG_SECONDS = 300.0


def ru_limit_for(user_count: int) -> int:
    """RU per 10 s by tenant size: under 50 users, 50 to 500, over 500."""
    if user_count < 50:
        return 3500
    if user_count <= 500:
        return 5000
    return 8000


@dataclass(frozen=True)
class Cost:
    ru: int
    writes: int
    teams_bucket: str | None = None  # "team_put" or "teams_post" when a Teams rate also applies


def graph_segments(path: str) -> list[str]:
    """The path segments after `/v1.0`, e.g. ['groups', 'abc', 'members']."""
    parts = [part for part in path.split("/") if part]
    if parts and parts[0].lower() == "v1.0":
        parts = parts[1:]
    return parts


def request_cost(method: str, path: str, query: dict[str, str]) -> Cost:
    """What one Graph request costs, per the documented identity-and-access cost table."""
    segments = graph_segments(path)
    lowered = [segment.lower() for segment in segments]
    method = method.upper()
    if method in {"GET", "HEAD"}:
        if lowered == ["users"]:
            base = 2
        elif len(lowered) >= 3 and lowered[0] == "groups" and lowered[2] == "members":
            base = 3
        else:
            base = 1
        options = {key.lower() for key in query}
        if "$select" in options:
            base -= 1
        if "$expand" in options:
            base += 1
        return Cost(ru=max(base, 1), writes=0)
    if method == "POST" and segments and segments[-1] in _READ_POSTS:
        return Cost(ru=_READ_POSTS[segments[-1]], writes=0)
    bucket = None
    if method == "PUT" and len(lowered) == 3 and lowered[0] == "groups" and lowered[2] == "team":
        bucket = "team_put"
    elif method == "POST" and lowered == ["teams"]:
        bucket = "teams_post"
    elif method == "POST" and len(lowered) == 4 and lowered[0] == "teams" and lowered[2] == "members":
        bucket = TEAM_MEMBERS_BUCKET + lowered[1]
    return Cost(ru=1, writes=1, teams_bucket=bucket)


class SlidingWindow:
    """Spending over the last `window` seconds against `limit`.

    Requests on parallel connections of a virtual clock (`VirtualTime`) reach the throttle slightly
    out of time order, so spending is kept sorted by time and what counts at `now` is what was spent
    in (`now - window`, `now`], never a running total that a request from further ahead would have
    emptied for one that lags behind.
    """

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._times: list[float] = []
        self._cumulative: list[int] = [0]  # _cumulative[i] = spending of _times[:i]

    def _first_after(self, moment: float) -> int:
        return bisect.bisect_right(self._times, moment)

    def _spent_from(self, index: int) -> int:
        return self._cumulative[-1] - self._cumulative[index]

    def wait_for(self, amount: int, now: float) -> float:
        """Seconds until `amount` fits (0.0 when it fits now)."""
        start = self._first_after(now - self.window)
        spent = self._cumulative[self._first_after(now + _WAIT_MARGIN)] - self._cumulative[start]
        if amount == 0 or spent + amount <= self.limit:
            return 0.0
        # The earliest entry whose ageing out leaves room: everything up to it must leave the window.
        for index in range(start, len(self._times)):
            if self._spent_from(index + 1) + amount <= self.limit:
                return max(self._times[index] + self.window - now, 0.0) + _WAIT_MARGIN
        return self.window  # more than the whole limit: cannot happen for the costs above

    def take(self, amount: int, now: float) -> None:
        if not amount:
            return
        if self._times and now < self._times[-1]:
            index = self._first_after(now)
            self._times.insert(index, now)
            # Lagging connections are only slightly behind: this touches the last few entries.
            self._cumulative[index + 1 :] = [c + amount for c in self._cumulative[index:]]
        else:
            self._times.append(now)
            self._cumulative.append(self._cumulative[-1] + amount)
        self._prune()

    def _prune(self) -> None:
        """Forget spending far older than the newest (lagging connections are never that far behind)."""
        keep = self._first_after(self._times[-1] - 4 * self.window - _LAG_SECONDS)
        if keep > 1024:
            base = self._cumulative[keep]
            self._times = self._times[keep:]
            self._cumulative = [c - base for c in self._cumulative[keep:]]

    def spent(self, now: float) -> int:
        now_index = self._first_after(now + _WAIT_MARGIN)  # float noise: `now` itself counts
        return self._cumulative[now_index] - self._cumulative[self._first_after(now - self.window)]


@dataclass
class _AppBudget:
    ru: SlidingWindow
    writes: SlidingWindow


class Throttle:
    """Admits requests against the budgets, or says how long to wait (simulated seconds)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._lock = threading.Lock()
        self._apps: dict[str, _AppBudget] = {}
        self._teams = {
            "team_put": SlidingWindow(TEAM_PUT_PER_SECOND, 1.0),
            "teams_post": SlidingWindow(TEAMS_POST_PER_SECOND, 1.0),
        }

    def _budget(self, app_id: str, user_count: int) -> _AppBudget:
        budget = self._apps.get(app_id)
        if budget is None:
            budget = _AppBudget(
                ru=SlidingWindow(ru_limit_for(user_count), RU_WINDOW_SECONDS),
                writes=SlidingWindow(WRITE_LIMIT, WRITE_WINDOW_SECONDS),
            )
            self._apps[app_id] = budget
        budget.ru.limit = ru_limit_for(user_count)  # the tier follows the tenant as it grows
        return budget

    def _teams_window(self, app_id: str, bucket: str) -> SlidingWindow:
        if not bucket.startswith(TEAM_MEMBERS_BUCKET):
            return self._teams[bucket]
        key = f"{app_id}/{bucket}"  # one window per app and team, made when first used
        if key not in self._teams:
            self._teams[key] = SlidingWindow(TEAM_MEMBERS_PER_SECOND, 1.0)
        return self._teams[key]

    def admit(self, app_id: str, cost: Cost, now: float, user_count: int) -> float:
        """0.0 if the request may proceed (its cost is then spent), else the wait in simulated seconds."""
        if not self.enabled:
            return 0.0
        with self._lock:
            budget = self._budget(app_id, user_count)
            windows = [(budget.ru, cost.ru), (budget.writes, cost.writes)]
            if cost.teams_bucket is not None:
                windows.append((self._teams_window(app_id, cost.teams_bucket), 1))
            wait = max(window.wait_for(amount, now) for window, amount in windows)
            if wait > 0.0:
                return wait
            for window, amount in windows:
                window.take(amount, now)
            return 0.0

    def usage(self, app_id: str, now: float) -> float:
        """The larger share of the app's RU or write quota spent in the current window (0.0 unknown app)."""
        with self._lock:
            budget = self._apps.get(app_id)
            if not self.enabled or budget is None:
                return 0.0
            return max(budget.ru.spent(now) / budget.ru.limit, budget.writes.spent(now) / budget.writes.limit)
