"""Typed errors of the Graph client and of token acquisition, and the parser of Graph error bodies.

Graph answers errors as `{"error": {"code", "message", "innerError": {"request-id", "date"}}}`; a
TLS-inspecting proxy or a gateway may answer with an HTML page instead. Both become a `GraphError`
whose text names the status, Graph's code and message and the request id a Microsoft support case
needs. No message ever carries a token or a secret: every text that came from the network passes
through `redact` first.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from smartsync.errors import AuthError

# An access token or a client assertion is a JWT: three base64url parts, the first starting "eyJ".
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_BEARER = re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+")
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
_SCRIPT = re.compile(r"(?is)<(script|style)\b.*?</\1\s*>")

HTML_EXCERPT_CHARS = 200
MIN_REDACTED_LENGTH = 4


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with every given secret, any JWT and any bearer credential replaced by `***`."""
    for secret in secrets:
        # A secret of a character or two cannot be hidden without mangling every word; real ones are long.
        if secret and len(secret) >= MIN_REDACTED_LENGTH:
            text = text.replace(secret, "***")
    text = _BEARER.sub("Bearer ***", text)
    return _JWT.sub("***", text)


class GraphError(Exception):
    """Graph (or something between us and Graph) refused or failed a request."""

    def __init__(
        self,
        status: int | None,
        code: str,
        message: str,
        request_id: str | None = None,
        *,
        method: str | None = None,
        path: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = redact(message)
        self.request_id = request_id
        self.method = method
        self.path = path
        self.hint = hint
        super().__init__(self._text())

    def _text(self) -> str:
        head = f"Graph {self.status}" if self.status is not None else "Graph request"
        text = f"{head} {self.code}: {self.message}"
        if self.request_id:
            text += f" (request-id {self.request_id})"
        if self.hint:
            text += f". {self.hint}"
        return text

    def __str__(self) -> str:
        return self._text()


class GraphBadRequest(GraphError):
    """400: the request was malformed or refers to something that cannot be used."""


class GraphAuthError(GraphError, AuthError):
    """401 or 403: the token was refused or the app lacks an application permission."""

    exit_code = AuthError.exit_code


class GraphNotFound(GraphError):
    """404: the object does not exist (or is not replicated yet)."""


class GraphConflict(GraphError):
    """409: the request conflicts with the object's current state (e.g. a name already taken)."""


class GraphThrottled(GraphError):
    """429 answered again and again until the retries ran out."""


class GraphUnavailable(GraphError):
    """5xx or a transport failure that persisted through the retries."""


class GraphOutcomeUnknown(GraphError):
    """A request that is unsafe to repeat lost its response: it may or may not have been applied."""


class TokenError(AuthError):
    """No access token could be obtained; the message says what to fix."""

    def __init__(self, message: str, code: str | None = None) -> None:
        self.code = code
        super().__init__(message)


_AUTH_HINT = (
    "Run `smartsync check-credentials` to compare the app's granted application permissions with "
    "the ones smartsync needs, and make sure an administrator granted consent"
)


def error_class(status: int | None) -> type[GraphError]:
    """The `GraphError` subclass for an HTTP status."""
    if status in (401, 403):
        return GraphAuthError
    if status == 400:
        return GraphBadRequest
    if status == 404:
        return GraphNotFound
    if status == 409:
        return GraphConflict
    if status == 429:
        return GraphThrottled
    if status is not None and status >= 500:
        return GraphUnavailable
    return GraphError


def strip_html(text: str, limit: int = HTML_EXCERPT_CHARS) -> str:
    """The readable words of an HTML page (or any text), shortened to `limit` characters."""
    words = _SPACE.sub(" ", html.unescape(_TAG.sub(" ", _SCRIPT.sub(" ", text)))).strip()
    return words[:limit]


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def _graph_error_fields(body: Any) -> tuple[str, str, str | None] | None:
    """(code, message, request id) when `body` is a Graph error document."""
    if not isinstance(body, Mapping):
        return None
    error = body.get("error")
    if not isinstance(error, Mapping):
        return None
    code = str(error.get("code") or "UnknownError")
    message = str(error.get("message") or "(Graph gave no message)")
    inner = error.get("innerError") or error.get("innererror")
    request_id = None
    if isinstance(inner, Mapping):
        found = inner.get("request-id") or inner.get("requestId")
        request_id = str(found) if found else None
    return code, message, request_id


def parse_body(content: bytes, headers: Mapping[str, str]) -> Any:
    """A response body as JSON when it is JSON, as text otherwise, `None` when empty."""
    if not content:
        return None
    text = content.decode("utf-8", errors="replace")
    content_type = (_header(headers, "content-type") or "").lower()
    if "json" in content_type or text.lstrip().startswith(("{", "[")):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: Any,
    *,
    method: str | None = None,
    path: str | None = None,
    error_type: type[GraphError] | None = None,
) -> GraphError:
    """The typed error for an error response (`body` already parsed by `parse_body`)."""
    cls = error_type or error_class(status)
    header_request_id = _header(headers, "request-id") or _header(headers, "client-request-id")
    hint = _AUTH_HINT if cls is GraphAuthError else None
    fields = _graph_error_fields(body)
    if fields is not None:
        code, message, request_id = fields
        return cls(
            status, code, message, request_id or header_request_id, method=method, path=path, hint=hint
        )
    if body is None:
        message = f"HTTP {status} with an empty body"
    else:
        excerpt = strip_html(body if isinstance(body, str) else json.dumps(body))
        message = (
            f"the HTTP {status} response was not from Microsoft Graph (a proxy, firewall or gateway "
            f"may have answered): {excerpt!r}"
        )
    return cls(status, "NonGraphResponse", message, header_request_id, method=method, path=path, hint=hint)
