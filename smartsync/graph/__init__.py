"""The only door to Microsoft Graph: an httpx-based client with batching and retries, and app-only tokens.

The sync engine uses `make_graph_client(config)` to get a `GraphClient` and its `TokenProvider`;
everything below that (paging, `$batch`, `Retry-After`, throttling, typed errors) lives here.
"""

from smartsync.graph.auth import TokenProvider
from smartsync.graph.client import (
    GraphClient,
    GraphRequest,
    GraphResult,
    ResponseInfo,
    make_graph_client,
)
from smartsync.graph.errors import (
    GraphAuthError,
    GraphBadRequest,
    GraphConflict,
    GraphError,
    GraphNotFound,
    GraphOutcomeUnknown,
    GraphThrottled,
    GraphUnavailable,
    TokenError,
)
from smartsync.graph.retry import Backoff

__all__ = [
    "Backoff",
    "GraphAuthError",
    "GraphBadRequest",
    "GraphClient",
    "GraphConflict",
    "GraphError",
    "GraphNotFound",
    "GraphOutcomeUnknown",
    "GraphRequest",
    "GraphResult",
    "GraphThrottled",
    "GraphUnavailable",
    "ResponseInfo",
    "TokenError",
    "TokenProvider",
    "make_graph_client",
]
