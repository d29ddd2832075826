"""When to retry a Graph request, how long to wait, and how to pace the threads that send them.

Graph throttles per app per tenant, so a 429 seen by one thread is news for all of them: the
`Pacer` closes a gate that every sender passes before sending, and halves the number of requests
in flight, growing it back one step at a time while answers come back unthrottled.

Whether a failed request may be sent again depends on what the failure says about the server
having acted on it: a connection that was never made cannot have changed anything, a response
that got lost after the request was sent may hide a write that was applied.
"""

from __future__ import annotations

import heapq
import random
import threading
from collections.abc import Callable

import httpx

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"})


def is_retry_safe(method: str, idempotent: bool | None) -> bool:
    """Whether repeating the request cannot do harm (an explicit flag beats the method's default)."""
    if idempotent is not None:
        return idempotent
    return method.upper() in SAFE_METHODS


def surely_not_sent(exc: httpx.TransportError) -> bool:
    """Whether the failure happened before any byte of the request reached the server."""
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


class Backoff:
    """Capped exponential backoff with jitter, for failures that carry no `Retry-After`."""

    def __init__(self, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None) -> None:
        self.base = base
        self.cap = cap
        self._rng = rng or random.Random()
        self._lock = threading.Lock()

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1 for the first retry)."""
        ceiling = min(self.cap, self.base * (2.0 ** max(attempt - 1, 0)))
        with self._lock:
            spread: float = self._rng.random()
        # Half fixed, half random: never zero, and threads that failed together do not retry together.
        return ceiling * (0.5 + spread / 2)


class Pacer:
    """Shared gate for all threads of one client: the pause after a 429 and an adaptive in-flight limit."""

    def __init__(
        self,
        limit: int,
        sleep: Callable[[float], None],
        clock: Callable[[], float] | None = None,
        grow_after: int = 20,
    ) -> None:
        self.max_limit = max(1, limit)
        self._limit = self.max_limit
        self._sleep = sleep
        # With a clock, a sender resumes no earlier than the last pause ended, and takes the slot
        # that came free first, no earlier than it did. On the real clock that is always the past;
        # on a virtual one (each thread keeping its own time) it is what makes slots connections.
        self._clock = clock
        self._resume_at = float("-inf")
        self._free_at = [float("-inf")] * self.max_limit  # a heap: when each slot came free
        self._grow_after = grow_after
        self._in_flight = 0
        self._pausing = 0
        self._calm = 0
        self._cond = threading.Condition()

    @property
    def limit(self) -> int:
        with self._cond:
            return self._limit

    def acquire(self) -> None:
        """Wait until no pause is in force and a slot is free, then take the slot."""
        with self._cond:
            while self._pausing or self._in_flight >= self._limit:
                self._cond.wait()
            self._in_flight += 1
            resume_at = max(self._resume_at, heapq.heappop(self._free_at))
        if self._clock is not None:
            gap = resume_at - self._clock()
            if gap > 0:
                self._sleep(gap)

    def release(self, throttled: bool) -> None:
        """Give the slot back; a throttled answer halves the limit, a run of calm ones grows it by one."""
        with self._cond:
            self._in_flight -= 1
            heapq.heappush(self._free_at, self._clock() if self._clock is not None else float("-inf"))
            if throttled:
                self._limit = max(1, self._limit // 2)
                self._calm = 0
            else:
                self._calm += 1
                if self._limit < self.max_limit and self._calm >= self._grow_after:
                    self._limit += 1
                    self._calm = 0
            self._cond.notify_all()

    def pause(self, seconds: float) -> None:
        """Hold every sender back for `seconds` (the caller sleeps; the others wait for it)."""
        with self._cond:
            self._pausing += 1
        try:
            if seconds > 0:
                self._sleep(seconds)
        finally:
            with self._cond:
                if self._clock is not None:
                    self._resume_at = max(self._resume_at, self._clock())
                self._pausing -= 1
                self._cond.notify_all()
