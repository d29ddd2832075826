"""Service time: how long Graph takes to answer, so that round trips and concurrency cost time.

The live service answers a request in 100–300 ms (more for a `$batch` of writes). The model draws
each request's service time from a lognormal distribution with a configurable median and spread
(the sigma of its logarithm), seeded so that a benchmark draws the same times each run. A `$batch`
serves its items concurrently, as Graph documents, so the round trip costs about its slowest item.

The time is spent after the request was handled (its quotas are charged at arrival) and outside the
simulator's lock, so requests on parallel connections overlap: on the HTTPS server each connection's
thread sleeps for real; in process, `VirtualTime` moves the calling thread's own clock.
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass

DEFAULT_SPREAD = 0.5  # sigma of ln(service time): about 68 % of requests within 0.6–1.65 × the median


@dataclass(frozen=True)
class Latency:
    """A service-time model: `median_ms` per request, `spread` the sigma of its logarithm."""

    median_ms: float = 0.0
    spread: float = DEFAULT_SPREAD
    seed: int = 0

    def __post_init__(self) -> None:
        if not (self.median_ms >= 0 and math.isfinite(self.median_ms)):
            raise ValueError(f"latency median must be 0 ms or more, got {self.median_ms}")
        if not (self.spread >= 0 and math.isfinite(self.spread)):
            raise ValueError(f"latency spread must be 0 or more, got {self.spread}")


class ServiceTime:
    """Draws service times in (simulated) seconds from a `Latency` model; thread-safe."""

    def __init__(self, latency: Latency | None = None) -> None:
        self.latency = latency or Latency()
        self._rng = random.Random(f"smartsync-simulator/latency/{self.latency.seed}")
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.latency.median_ms > 0

    def draw(self) -> float:
        """One request's service time in seconds."""
        if not self.enabled:
            return 0.0
        with self._lock:
            z = self._rng.gauss(0.0, 1.0)
        return self.latency.median_ms / 1000.0 * math.exp(self.latency.spread * z)

    def batch(self, items: int) -> float:
        """A `$batch` of `items`: they are served concurrently, so it costs its slowest item."""
        return max((self.draw() for _ in range(max(1, items))), default=0.0)
