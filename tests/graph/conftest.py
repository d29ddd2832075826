"""Fixtures for the Graph client tests: a mocked Graph, and a client whose waits are recorded, not slept."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import respx

from smartsync.graph import GraphClient
from smartsync.graph.retry import Backoff

GRAPH = "https://graph.microsoft.com"
TOKEN = "eyJhbGciOiJub25lIn0.eyJyb2xlcyI6W119.c2lnbmF0dXJl"


@pytest.fixture
def sleeps() -> list[float]:
    """Every wait the client asked for, in order (its `sleep` is this list's `append`)."""
    return []


@pytest.fixture
def graph() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=f"{GRAPH}/v1.0", assert_all_called=False) as router:
        yield router


@pytest.fixture
def client(sleeps: list[float]) -> Iterator[GraphClient]:
    with GraphClient(
        GRAPH, lambda: TOKEN, sleep=sleeps.append, backoff=Backoff(rng=random.Random(7))
    ) as made:
        yield made
