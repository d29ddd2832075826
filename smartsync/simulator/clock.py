"""The simulator's clock: simulated time that can run faster than real time.

With `time_scale=1000` one real second is 1000 simulated seconds, so quotas measured per 10 s or per
150 s still bind while a benchmark of tens of thousands of writes finishes in seconds. Durations the
simulator hands to clients (`Retry-After`) are converted back to real seconds, so they may be
fractional.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Clock:
    def __init__(
        self,
        time_scale: float = 1.0,
        start: float | None = None,
        real_time: Callable[[], float] = time.monotonic,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = time_scale
        self._real_time = real_time
        self._real_origin = real_time()
        # Simulated time is wall-clock epoch seconds, so createdDateTime and credential expiry look real.
        self._sim_origin = time.time() if start is None else start
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """Simulated seconds since the Unix epoch."""
        with self._lock:
            elapsed = (self._real_time() - self._real_origin) * self.time_scale
            return self._sim_origin + elapsed + self._offset

    def advance(self, seconds: float) -> None:
        """Move simulated time forward (tests use this instead of sleeping)."""
        with self._lock:
            self._offset += seconds

    def to_real(self, sim_seconds: float) -> float:
        """A simulated duration expressed in real seconds (what Retry-After must carry)."""
        return sim_seconds / self.time_scale


class VirtualTime:
    """A time source that moves only when someone sleeps on it: no compute time, only waits.

    With `Clock(real_time=virtual.now)` and the client sleeping through `virtual.sleep`, the simulated
    seconds a run takes are exactly the waits Graph imposed (Retry-After, team polling, service time),
    whatever the speed of the machine running it. A client that waits until a deadline
    (`deadline - now()`) makes the waits of concurrent threads overlap as they would in real time.

    Each thread has its own clock, so requests on parallel connections overlap. The thread that made
    the `VirtualTime` drives: while it runs, no other thread does (the client waits for its senders
    before going on), so it continues from the furthest point any thread reached. Another thread
    starts from where the driver was when it last looked at the time; `start_task(at)` sets it back
    to `at` when it takes up a task that was handed out then (a thread pool may run in turn tasks
    that were meant to run side by side, because the in-process simulator answers at once).
    """

    def __init__(self, start: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._driver = threading.get_ident()
        self._latest = start  # the furthest any thread has got
        self._driver_now = start  # where the driver last was: where other threads' work starts
        self._local = threading.local()  # another thread's (driver time it started from, its time)

    def _now(self) -> float:
        if threading.get_ident() == self._driver:
            self._driver_now = self._latest
            return self._latest
        lane: tuple[float, float] | None = getattr(self._local, "lane", None)
        if lane is None or lane[0] != self._driver_now:
            lane = (self._driver_now, self._driver_now)
            self._local.lane = lane
        return lane[1]

    def now(self) -> float:
        with self._lock:
            return self._now()

    def sleep(self, seconds: float) -> None:
        if not seconds > 0:  # also NaN: nothing to wait
            return
        with self._lock:
            until = self._now() + seconds
            if threading.get_ident() == self._driver:
                self._driver_now = until
            else:
                self._local.lane = (self._driver_now, until)
            self._latest = max(self._latest, until)

    def start_task(self, at: float) -> None:
        """This (non-driver) thread takes up a task handed out at `at`: its time is `at` again."""
        with self._lock:
            if threading.get_ident() != self._driver:
                self._local.lane = (self._driver_now, at)
