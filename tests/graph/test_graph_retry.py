"""Retry-After parsing, backoff and the shared pacer, checked directly."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from smartsync.graph.retry import Backoff, Pacer, is_retry_safe
from smartsync.httpio import MAX_RETRY_AFTER_SECONDS, parse_retry_after

NOW = datetime(2025, 3, 3, 8, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10", 10.0),
        ("0.25", 0.25),
        ("0", 0.0),
        ("-3", 0.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("nan", None),
        ("99999", MAX_RETRY_AFTER_SECONDS),
        (format_datetime(NOW + timedelta(seconds=45), usegmt=True), 45.0),
        (format_datetime(NOW - timedelta(seconds=45), usegmt=True), 0.0),
        ("Mon, 03 Mar 2025 08:01:00 GMT", 60.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize(
    ("method", "idempotent", "safe"),
    [
        ("GET", None, True),
        ("patch", None, True),
        ("PUT", None, True),
        ("DELETE", None, True),
        ("POST", None, False),
        ("POST", True, True),
        ("DELETE", False, False),
    ],
)
def test_retry_safety(method: str, idempotent: bool | None, safe: bool) -> None:
    assert is_retry_safe(method, idempotent) is safe


def test_backoff_grows_and_is_capped() -> None:
    backoff = Backoff(base=0.5, cap=8.0, rng=random.Random(1))
    delays = [backoff.delay(attempt) for attempt in range(1, 11)]

    assert 0.25 <= delays[0] <= 0.5
    assert 2.0 <= delays[3] <= 4.0
    assert all(4.0 <= d <= 8.0 for d in delays[5:])  # capped at 8, never below half the cap


def test_pacer_holds_senders_during_a_pause() -> None:
    entered = threading.Event()
    release_sleep = threading.Event()
    waited: list[float] = []

    def slow_sleep(seconds: float) -> None:
        waited.append(seconds)
        entered.set()
        release_sleep.wait(5)

    pacer = Pacer(4, slow_sleep)
    pauser = threading.Thread(target=pacer.pause, args=(2.0,))
    pauser.start()
    assert entered.wait(5)

    acquired = threading.Event()

    def sender() -> None:
        pacer.acquire()
        acquired.set()
        pacer.release(throttled=False)

    other = threading.Thread(target=sender)
    other.start()
    assert not acquired.wait(0.1)  # held back while the pause lasts
    release_sleep.set()
    assert acquired.wait(5)
    pauser.join(5)
    other.join(5)
    assert waited == [2.0]


def test_pacer_halves_on_throttling_and_grows_back_slowly() -> None:
    pacer = Pacer(8, lambda seconds: None, grow_after=3)
    for _ in range(2):
        pacer.acquire()
        pacer.release(throttled=True)
    assert pacer.limit == 2
    for _ in range(6):
        pacer.acquire()
        pacer.release(throttled=False)
    assert pacer.limit == 4
    for _ in range(100):
        pacer.acquire()
        pacer.release(throttled=False)
    assert pacer.limit == 8
