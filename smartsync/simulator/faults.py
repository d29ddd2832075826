"""Seeded fault injection: the failures a Graph client must survive, reproducible from a seed.

Kinds:
- `429`, `503`, `504`: an error response instead of the real one; the request is NOT applied.
- `drop`: the connection breaks before the request is applied; the client sees no response.
- `lost`: the request IS applied, then the connection breaks, so the client cannot know it succeeded
  (the case that makes retries of non-idempotent writes dangerous).

`429`/`503`/`504` can hit single `$batch` items; `drop`/`lost` hit whole HTTP requests. The login
endpoints are spared unless `login=true` is in the spec.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

ALL_KINDS: tuple[str, ...] = ("429", "503", "504", "drop", "lost")
ITEM_KINDS = frozenset({"429", "503", "504"})  # what a single $batch item can suffer
_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class FaultSpecError(ValueError):
    """A `--faults` value that cannot be understood; the message says what is expected."""


@dataclass(frozen=True)
class FaultSpec:
    rate: float = 0.0  # probability that a request (or $batch item) gets a fault
    seed: int = 0
    kinds: tuple[str, ...] = ALL_KINDS
    login: bool = False  # also inject into the login endpoints

    def __post_init__(self) -> None:
        object.__setattr__(self, "kinds", tuple(str(kind) for kind in self.kinds))  # lists are welcome too
        if not 0.0 <= self.rate <= 1.0:
            raise FaultSpecError(f"fault rate must be between 0 and 1, got {self.rate}")
        unknown = [kind for kind in self.kinds if kind not in ALL_KINDS]
        if unknown:
            raise FaultSpecError(
                f"unknown fault kind(s) {', '.join(unknown)}; expected some of {'+'.join(ALL_KINDS)}"
            )
        if not self.kinds:
            raise FaultSpecError(f"at least one fault kind is needed, from {'+'.join(ALL_KINDS)}")

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        """Read `rate=0.1,seed=7,kinds=429+503+504+drop+lost[,login=true]`."""
        expected = "expected e.g. 'rate=0.1,seed=7,kinds=429+503+504+drop+lost'"
        values: dict[str, str] = {}
        for part in text.split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            key = key.strip().lower()
            if not sep or key not in {"rate", "seed", "kinds", "login"}:
                raise FaultSpecError(f"cannot read '{part.strip()}' in fault spec '{text}'; {expected}")
            values[key] = value.strip()
        try:
            rate = float(values.get("rate", "0"))
            seed = int(values.get("seed", "0"))
        except ValueError:
            raise FaultSpecError(
                f"rate must be a number and seed an integer in '{text}'; {expected}"
            ) from None
        kinds = tuple(k.strip() for k in values["kinds"].split("+")) if "kinds" in values else ALL_KINDS
        login_word = values.get("login", "false").lower()
        if login_word not in _TRUE_WORDS | _FALSE_WORDS:
            raise FaultSpecError(f"login must be true or false in '{text}'")
        return cls(rate=rate, seed=seed, kinds=kinds, login=login_word in _TRUE_WORDS)


class FaultInjector:
    """Draws faults from one seeded stream; each draw uses the same amount of randomness."""

    def __init__(self, spec: FaultSpec | None) -> None:
        self.spec = spec
        self._random = random.Random(spec.seed if spec else 0)
        self._lock = threading.Lock()

    def draw(self, eligible: frozenset[str] | tuple[str, ...], *, login: bool = False) -> str | None:
        """The fault kind for this request, or None. `eligible` limits the kinds that make sense here."""
        spec = self.spec
        if spec is None or spec.rate <= 0.0 or (login and not spec.login):
            return None
        choices = [kind for kind in spec.kinds if kind in eligible]
        with self._lock:
            roll = self._random.random()
            pick = self._random.random()
        if roll >= spec.rate or not choices:
            return None
        return choices[min(int(pick * len(choices)), len(choices) - 1)]


class ConnectionDropped(Exception):
    """The connection breaks without a response; `applied` says whether the request took effect first."""

    def __init__(self, kind: str, applied: bool) -> None:
        super().__init__(f"simulated fault '{kind}': connection closed without a response")
        self.kind = kind
        self.applied = applied
