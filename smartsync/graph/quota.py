"""Pacing to Graph's documented quotas, so that a sync is not throttled in the first place (DESIGN §7).

Graph limits each app in each tenant to 3,000 writes per 150 s and to a number of resource units
(RU) per 10 s that depends on the tenant's size; team creation has its own per-second rates. Every
429 is a wasted round trip and a mark against the app, so the client keeps its own account of what
it spent in the same sliding windows and holds a request back until its estimated cost fits.

- Costs are estimated before sending from the documented cost table (`estimate_cost`) and
  corrected by each response's `x-ms-resource-unit` header.
- The RU limit starts at the smallest tier (3,500) and follows the tenant's size once the engine
  knows how many users it holds (`for_tenant_users`).
- `x-ms-throttle-limit-percentage` (sent past 80 % of a quota) says how much of it Graph counts:
  when that is clearly more than our own account, something else spends from the same quota (another
  process of the same app), and the limits shrink to match. A 429 that still comes shrinks them by
  a tenth, down to half of the documented quota.

Waiting happens through the client's `sleep`, measured on its `clock`, outside any lock.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

WRITE_LIMIT = 3000
WRITE_WINDOW_SECONDS = 150.0
RU_WINDOW_SECONDS = 10.0
TEAMS_WINDOW_SECONDS = 1.0
TEAMS_LIMITS = {"teams_post": 10, "team_put": 6}  # POST /teams, PUT /groups/{id}/team: per second
SMALLEST_RU_LIMIT = 3500
# Our own account may lag Graph's by a request or two in flight: keep this share of each quota free.
HEADROOM = 0.02
# Never shrink below this share of the documented quota: past that, Retry-After paces us anyway.
FLOOR_SHARE = 0.5
# How far one sender's virtual clock may lag another's (the longest wait, for the write quota).
LAG_SECONDS = 300.0
# A reported use this much above our own account means someone else spends from the same quota.
FOREIGN_USE_MARGIN = 0.1


def ru_limit_for_users(user_count: int) -> int:
    """RU per 10 s by tenant size: under 50 users 3,500; 50 to 500, 5,000; over 500, 8,000."""
    if user_count < 50:
        return 3500
    if user_count <= 500:
        return 5000
    return 8000


@dataclass(frozen=True)
class Cost:
    ru: int
    writes: int
    teams: str | None = None  # "teams_post" or "team_put" when a Teams creation rate also applies


def estimate_cost(method: str, url: str) -> Cost:
    """What Graph's identity-and-access cost table charges for one request (relative or full URL)."""
    parts = urlsplit(url)
    segments = [s.lower() for s in parts.path.split("/") if s]
    if segments and segments[0] == "v1.0":
        segments = segments[1:]
    method = method.upper()
    if method == "GET":
        if segments == ["users"]:
            base = 2
        elif len(segments) >= 3 and segments[0] == "groups" and segments[2] == "members":
            base = 3
        else:
            base = 1
        options = {key.lower() for key, _ in parse_qsl(parts.query, keep_blank_values=True)}
        base += ("$expand" in options) - ("$select" in options)
        return Cost(max(base, 1), 0)
    teams = None
    if method == "POST" and segments == ["teams"]:
        teams = "teams_post"
    elif method == "PUT" and len(segments) == 3 and segments[0] == "groups" and segments[2] == "team":
        teams = "team_put"
    return Cost(1, 1, teams)


class _Window:
    """What we spent in the last `seconds`, against `limit` (which adapts).

    Spending is kept in time order and what counts at `now` is what was spent in (`now - seconds`,
    `now`], as Graph counts it: with a virtual clock each sending thread keeps its own time, and one
    running ahead must not use up the room of one that lags behind.
    """

    def __init__(self, limit: float, seconds: float) -> None:
        self.documented = limit
        self.limit = limit
        self.seconds = seconds
        self._spent: list[tuple[float, float]] = []

    def total(self, now: float) -> float:
        horizon = now - self.seconds
        return sum(amount for at, amount in self._spent if horizon < at <= now + 1e-6)

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until `amount` more fits under the limit (0.0 now)."""
        usable = self.limit * (1 - HEADROOM) if self.limit > 50 else self.limit
        horizon = now - self.seconds
        current = [(at, spent) for at, spent in self._spent if at > horizon]
        if amount <= 0 or self.total(now) + amount <= usable or not current:
            return 0.0
        total = sum(spent for _, spent in current)  # what is ahead of us counts once we get there
        for at, spent in current:
            total -= spent
            if total + amount <= usable:
                return max(at + self.seconds - now, 0.0) + 1e-3
        return self.seconds

    def take(self, amount: float, now: float) -> None:
        if not amount:
            return
        bisect.insort(self._spent, (now, amount))
        # A sender whose clock lags (it waited less) still needs what was spent around its own time.
        horizon = self._spent[-1][0] - self.seconds - LAG_SECONDS
        if self._spent[0][0] < horizon - self.seconds:
            self._spent = [entry for entry in self._spent if entry[0] >= horizon]

    def shrink(self, factor: float) -> None:
        self.limit = max(self.documented * FLOOR_SHARE, self.limit * factor)


class QuotaPacer:
    """Holds requests back until their cost fits in the app's quotas; thread-safe."""

    def __init__(
        self,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        ru_limit: int = SMALLEST_RU_LIMIT,
        time_scale: float = 1.0,
    ) -> None:
        """`time_scale` > 1 only for a simulated tenant whose clock runs that much faster than ours."""
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self.ru = _Window(ru_limit, RU_WINDOW_SECONDS / time_scale)
        self.writes = _Window(WRITE_LIMIT, WRITE_WINDOW_SECONDS / time_scale)
        self._teams = {
            name: _Window(limit, TEAMS_WINDOW_SECONDS / time_scale) for name, limit in TEAMS_LIMITS.items()
        }
        self.waited_seconds = 0.0

    def for_tenant_users(self, user_count: int) -> None:
        """Follow the RU tier of a tenant with this many users."""
        limit = ru_limit_for_users(user_count)
        with self._lock:
            share = self.ru.limit / self.ru.documented
            self.ru.documented = limit
            self.ru.limit = limit * share

    def reserve(self, costs: list[Cost]) -> float:
        """Wait until these requests (sent together) fit in every quota, then count them as spent.

        Returns the moment they were counted at (on the pacer's clock), for `throttled`."""
        ru = sum(c.ru for c in costs)
        writes = sum(c.writes for c in costs)
        teams: dict[str, int] = {}
        for cost in costs:
            if cost.teams is not None:
                teams[cost.teams] = teams.get(cost.teams, 0) + 1
        while True:
            with self._lock:
                now = self._clock()
                needs = [(self.ru, ru), (self.writes, writes)]
                needs += [(self._teams[name], n) for name, n in teams.items()]
                wait = max(window.wait_for(amount, now) for window, amount in needs)
                if wait <= 0:
                    for window, amount in needs:
                        window.take(amount, now)
                    return now
            self.waited_seconds += wait
            self._sleep(wait)

    def observe(self, headers: Mapping[str, str], estimated: Cost) -> None:
        """Correct our account from a response's `x-ms-resource-unit` and throttle-limit headers."""
        lowered = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            now = self._clock()
            charged = _number(lowered.get("x-ms-resource-unit"))
            if charged is not None and charged != estimated.ru:
                self.ru.take(charged - estimated.ru, now)
            used = _number(lowered.get("x-ms-throttle-limit-percentage"))
            if used is not None:
                ours = max(
                    self.ru.total(now) / self.ru.documented, self.writes.total(now) / self.writes.documented
                )
                if used > ours + FOREIGN_USE_MARGIN:
                    factor = max(FLOOR_SHARE, 1 - (used - ours))
                    self.ru.shrink(factor)
                    self.writes.shrink(factor)

    def throttled(self, estimated: Cost, counted_at: float) -> None:
        """Graph answered 429 although we kept to our account: it did not charge the request (taken
        back where it was counted, so that both leave the window together), and the quota the
        request needs gets a tenth more room from now on."""
        with self._lock:
            self.ru.take(-estimated.ru, counted_at)
            self.writes.take(-estimated.writes, counted_at)
            if estimated.teams is not None:
                self._teams[estimated.teams].shrink(0.9)
            elif estimated.writes:
                self.writes.shrink(0.9)
            else:
                self.ru.shrink(0.9)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number else None  # not NaN
