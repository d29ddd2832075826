"""The Microsoft Graph client: paging, `$batch`, retries, throttling and typed errors (DESIGN §7).

Everything smartsync sends to Graph goes through `GraphClient`. It retries only what is safe to
retry (see `retry.py`), honours `Retry-After` on whole responses and on each `$batch` item, pauses
every sender when Graph throttles, and turns error responses into `GraphError` subclasses.
`batch` never raises for one failed item: each `GraphResult` carries its own error, so the engine
can report exactly which change failed and carry on with the rest.
"""

from __future__ import annotations

import json as jsonlib
import ssl
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import httpx

from smartsync import __version__
from smartsync.graph.errors import (
    GraphError,
    GraphOutcomeUnknown,
    GraphUnavailable,
    error_from_response,
    parse_body,
    strip_html,
)
from smartsync.graph.quota import TEAMS_LIMITS, Cost, QuotaPacer, estimate_cost
from smartsync.graph.retry import (
    RETRYABLE_STATUSES,
    Backoff,
    Pacer,
    is_retry_safe,
    surely_not_sent,
)
from smartsync.httpio import is_tls_failure, parse_retry_after, tls_verify

if TYPE_CHECKING:
    from smartsync.config import Config
    from smartsync.graph.auth import TokenProvider

API_VERSION = "v1.0"
MAX_BATCH_SIZE = 20
# Sent as HTTP status of a GraphResult whose request never got an HTTP answer.
NO_STATUS = 0
_QUERY_SAFE = "$,'():/*@"
_REPAIR_HINT = "The next run compares Entra with the roster again and repairs any difference"


@dataclass(frozen=True)
class GraphRequest:
    """One request for `GraphClient.batch`; `url` is relative to /v1.0, e.g. "/groups/{id}"."""

    method: str
    url: str
    body: Any = None
    headers: Mapping[str, str] | None = None
    idempotent: bool | None = None  # None: decided by the method (POST is not, the others are)


@dataclass(frozen=True)
class GraphResult:
    """The final answer to one request; `status` is 0 when no HTTP answer ever came."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    error: GraphError | None = None
    already: bool = False  # an add of an existing reference or a removal of an absent one

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class ResponseInfo:
    """One HTTP exchange with Graph, for counting and logging (never carries headers or bodies)."""

    method: str
    path: str
    status: int | None  # None when the transport failed
    attempt: int
    elapsed_seconds: float
    request_id: str | None = None
    retry_after: float | None = None
    transport_error: str | None = None
    batch_statuses: tuple[int, ...] = ()


@dataclass(frozen=True)
class _Retry:
    """A retryable failure: what to report if the retries run out, and how long Graph asked us to wait."""

    error: GraphError
    retry_after: float | None
    throttled: bool
    received_at: float | None = None  # on the client's clock, when one is given


_Outcome = GraphResult | _Retry


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def _is_ref(path: str) -> bool:
    return urlsplit(path).path.rstrip("/").endswith("/$ref")


def _display_path(url: str) -> str:
    """The part of a URL worth showing in a message: the path below /v1.0, without the query."""
    path = urlsplit(url).path
    prefix = f"/{API_VERSION}"
    return path[len(prefix) :] if path.startswith(prefix + "/") else path


def encode_query(params: Mapping[str, str]) -> str:
    """A query string that keeps OData's `$`, quotes and brackets readable, and encodes the rest."""
    return "&".join(
        f"{quote(key, safe='$')}={quote(str(value), safe=_QUERY_SAFE)}" for key, value in params.items()
    )


def _removed_missing(message: str) -> bool:
    """Graph's other answer to removing a non-member: "removed object references do not exist"."""
    return "removed object references do not exist" in message.lower()


def _verify_option(verify: str | bool | ssl.SSLContext) -> ssl.SSLContext | bool:
    """httpx's `verify` from ours: a CA file path adds that CA, True means the public CAs."""
    if isinstance(verify, str):
        return tls_verify(verify)
    if verify is True:
        return tls_verify(None)
    return verify


def classify(
    method: str, path: str, idempotent: bool | None, status: int, headers: Mapping[str, str], body: Any
) -> _Outcome:
    """Decide what an answer means: done, failed, or to be sent again."""
    if status < 400:
        return GraphResult(status, body, headers)
    error = error_from_response(status, headers, body, method=method, path=path)
    retry_after = parse_retry_after(_header(headers, "retry-after"))
    if status == 429:
        return _Retry(error, retry_after, throttled=True)
    if status in RETRYABLE_STATUSES:
        if is_retry_safe(method, idempotent):
            return _Retry(error, retry_after, throttled=False)
        unknown = GraphOutcomeUnknown(
            status,
            "OutcomeUnknown",
            f"{method} {path} was answered {status} {error.code} ({error.message}), so it is not known "
            "whether Graph applied it",
            error.request_id,
            method=method,
            path=path,
            hint=_REPAIR_HINT,
        )
        return GraphResult(status, body, headers, error=unknown)
    if _is_ref(path):
        # Adding a reference that exists or removing one that is gone leaves things as wanted.
        if method == "POST" and status == 400 and "already exist" in error.message.lower():
            return GraphResult(204, None, headers, already=True)
        if method == "DELETE" and (status == 404 or (status == 400 and _removed_missing(error.message))):
            return GraphResult(204, None, headers, already=True)
    return GraphResult(status, body, headers, error=error)


class GraphClient:
    """Talks to Graph v1.0 at `base_url`; thread-safe; one instance per run.

    `on_response` is called for every HTTP exchange (a `$batch` counts once), from whichever thread
    made it. Closing the client does not close the token provider that feeds it.
    """

    def __init__(
        self,
        base_url: str,
        token: Callable[[], str],
        *,
        transport: httpx.BaseTransport | None = None,
        verify: str | bool | ssl.SSLContext = True,
        concurrency: int = 4,
        max_retries: int = 6,
        timeout: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        on_response: Callable[[ResponseInfo], None] | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] | None = None,
        pacing: bool | QuotaPacer = True,
        start_task: Callable[[float], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api = f"{self.base_url}/{API_VERSION}"
        origin = urlsplit(self.base_url)
        self._origin = (origin.scheme.lower(), origin.netloc.lower())
        self._token = token
        self.concurrency = max(1, concurrency)
        self.max_retries = max(0, max_retries)
        self._sleep = sleep
        # With a clock, waits run from when the answer came, so threads throttled together resume together.
        self._clock = clock
        # Only for a virtual clock (the benchmarks): a sender thread taking up a `$batch` call is set
        # back to when its round began, so calls meant to run side by side do, whichever thread runs them.
        self._start_task = start_task
        self._on_response = on_response
        self._close_hooks: list[Callable[[], None]] = []
        self._backoff = backoff or Backoff()
        self._pacer = Pacer(self.concurrency, sleep, clock)
        # Keeping to Graph's quotas ourselves (quota.py) instead of meeting them as 429s.
        self.quota: QuotaPacer | None = (
            pacing
            if isinstance(pacing, QuotaPacer)
            else QuotaPacer(sleep, clock or time.monotonic)
            if pacing
            else None
        )
        self._http = httpx.Client(
            transport=transport,
            verify=_verify_option(verify),
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": f"smartsync/{__version__}", "Accept": "application/json"},
            trust_env=True,
        )

    # -- public API -------------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()
        for hook in self._close_hooks:
            hook()

    def granted_roles(self) -> frozenset[str]:
        """The application permissions in the current token's `roles` claim (empty when unreadable)."""
        from smartsync.graph.auth import decode_jwt_claims

        try:
            roles = decode_jwt_claims(self._token()).get("roles") or []
        except (ValueError, TypeError, GraphError):
            return frozenset()
        return frozenset(str(role) for role in roles) if isinstance(roles, list) else frozenset()

    def on_close(self, hook: Callable[[], None]) -> None:
        """Run `hook` when this client closes (the token provider's connections close with it)."""
        self._close_hooks.append(hook)

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def pause(self, attempt: int) -> None:
        """Wait as before retry number `attempt` of a failure without `Retry-After` (the backoff)."""
        self._sleep(self._backoff.delay(attempt))

    def pace_for_tenant(self, user_count: int) -> None:
        """Pace resource units to the quota of a tenant with this many users (DESIGN §7)."""
        if self.quota is not None:
            self.quota.for_tenant_users(user_count)

    @property
    def concurrency_now(self) -> int:
        """The in-flight limit after adapting to throttling (at most `concurrency`)."""
        return self._pacer.limit

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> GraphResult:
        """Send one request with retries; raise a `GraphError` subclass when the final outcome is an error."""
        method = method.upper()
        result = self._execute(method, self._url(path, params), json, headers, idempotent)
        if result.error is not None:
            raise result.error
        return result

    def get(
        self, path: str, params: Mapping[str, str] | None = None, *, headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """GET one JSON object."""
        result = self.request("GET", path, params=params, headers=headers)
        if not isinstance(result.body, dict):
            raise self._not_graph(result, f"GET {_display_path(path)}", "a JSON object")
        return result.body

    def get_all(
        self, path: str, params: Mapping[str, str] | None = None, *, headers: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """GET every item of a collection, following `@odata.nextLink` exactly as Graph returns it."""
        url: str | None = self._url(path, params)
        items: list[dict[str, Any]] = []
        page = 0
        while url is not None:
            page += 1
            result = self._execute("GET", url, None, headers, None)
            if result.error is not None:
                raise result.error
            body = result.body
            if not isinstance(body, dict) or not isinstance(body.get("value"), list):
                raise self._not_graph(
                    result, f"page {page} of GET {_display_path(path)}", "a JSON object with a 'value' list"
                )
            items.extend(body["value"])
            next_link = body.get("@odata.nextLink")
            if next_link is None:
                url = None
            elif isinstance(next_link, str) and self._same_origin(next_link):
                url = next_link
            else:
                raise GraphError(
                    result.status,
                    "UnexpectedNextLink",
                    f"page {page} of GET {_display_path(path)} points its next page at "
                    f"{str(next_link)[:200]!r}, which is not on {self.base_url}; smartsync does not send its "
                    "token anywhere else",
                )
        return items

    def batch(self, requests: Sequence[GraphRequest]) -> list[GraphResult]:
        """Send any number of requests as `$batch` calls of at most 20; results come in request order.

        Items answered 429 (or 5xx when safe to repeat) go again in a later `$batch` once their
        `Retry-After` has passed. A 429 in a round in which other items got through uses up none of
        the item's retries (Graph is pacing us, and a long queue under a quota meets many), and after
        429s the next round sends about twice what got through rather than everything again. An
        item's error is in its result, never raised.
        """
        requests = list(requests)
        for request in requests:
            if request.url.startswith(("http://", "https://")):
                raise ValueError(f"$batch items need a URL relative to /{API_VERSION}, got {request.url!r}")
        results: list[GraphResult | None] = [None] * len(requests)
        attempts = [0] * len(requests)
        pending = list(range(len(requests)))
        window = len(pending)  # how many items the next round sends; narrows after 429s
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="graph-batch") as pool:
            while pending:
                round_start = self._clock() if self._clock is not None else 0.0
                sending, later = pending[:window], pending[window:]
                chunks = self._chunks(sending, requests)
                for chunk in chunks:
                    for index in chunk:
                        attempts[index] += 1
                outcomes = pool.map(
                    lambda chunk, started_at=round_start: self._send_chunk(
                        [(attempts[i], requests[i]) for i in chunk], started_at=started_at
                    ),
                    chunks,
                )
                answered = [
                    (index, outcome)
                    for chunk, chunk_outcomes in zip(chunks, outcomes, strict=True)
                    for index, outcome in zip(chunk, chunk_outcomes, strict=True)
                ]
                # A 429 is Graph pacing the sender, not the request failing: in a round in which other
                # items got through, it does not use up the throttled item's retries.
                progress = any(isinstance(outcome, GraphResult) for _, outcome in answered)
                retry: list[int] = []
                finished = throttled = 0
                for index, outcome in answered:
                    if isinstance(outcome, _Retry) and outcome.throttled:
                        throttled += 1
                        if progress:
                            attempts[index] -= 1
                    if isinstance(outcome, GraphResult):
                        results[index] = outcome
                        finished += 1
                    elif attempts[index] > self.max_retries:
                        results[index] = self._exhausted(outcome)
                    else:
                        retry.append(index)
                # After 429s send about twice what Graph let through, not everything again: the same
                # pace with far fewer refusals. Without 429s the window opens up again.
                window = max(MAX_BATCH_SIZE, 2 * finished if throttled else 2 * window)
                pending = sorted(retry) + later
        return [result for result in results if result is not None]

    def _chunks(self, indexes: list[int], requests: list[GraphRequest]) -> list[list[int]]:
        """`$batch` calls of at most 20, each with no more team creations than Graph admits a second."""
        chunks: list[list[int]] = []
        teams: dict[str, int] = {}
        for index in indexes:
            bucket = estimate_cost(requests[index].method, requests[index].url).teams
            full = (
                bucket is not None and self.quota is not None and teams.get(bucket, 0) >= TEAMS_LIMITS[bucket]
            )
            if not chunks or len(chunks[-1]) >= MAX_BATCH_SIZE or full:
                chunks.append([])
                teams = {}
            chunks[-1].append(index)
            if bucket is not None:
                teams[bucket] = teams.get(bucket, 0) + 1
        return chunks

    # -- one request --------------------------------------------------------------------------------

    def _execute(
        self,
        method: str,
        url: str,
        body: Any,
        headers: Mapping[str, str] | None,
        idempotent: bool | None,
    ) -> GraphResult:
        path = _display_path(url)
        safe = is_retry_safe(method, idempotent)
        client_request_id = str(uuid.uuid4())
        content = jsonlib.dumps(body).encode("utf-8") if body is not None else None
        attempt = 0
        while True:
            attempt += 1
            outcome = self._attempt(
                method, url, path, content, headers, idempotent, safe, client_request_id, attempt
            )
            if isinstance(outcome, GraphResult):
                return outcome
            if attempt > self.max_retries:
                return self._exhausted(outcome)
            self._wait(outcome, attempt)

    def _attempt(
        self,
        method: str,
        url: str,
        path: str,
        content: bytes | None,
        headers: Mapping[str, str] | None,
        idempotent: bool | None,
        safe: bool,
        client_request_id: str,
        attempt: int,
    ) -> _Outcome:
        send_headers = self._headers(client_request_id, headers)
        if content is not None:
            send_headers.setdefault("Content-Type", "application/json")
        cost = estimate_cost(method, url)
        self._pacer.acquire()
        throttled = False
        started = time.monotonic()
        try:
            # Counted from when it is sent, as Graph counts it.
            counted_at = self.quota.reserve([cost]) if self.quota is not None else 0.0
            try:
                response = self._http.request(method, url, content=content, headers=send_headers)
            except httpx.TransportError as exc:
                self._report(method, path, None, attempt, started, transport_error=type(exc).__name__)
                return self._transport_outcome(exc, method, path, safe)
            throttled = response.status_code == 429
            parsed = parse_body(response.content, response.headers)
            response_headers = dict(response.headers)
            self._account(cost, counted_at, response.status_code, response_headers)
            self._report(method, path, response.status_code, attempt, started, headers=response_headers)
            return self._stamped(
                classify(method, path, idempotent, response.status_code, response_headers, parsed)
            )
        finally:
            self._pacer.release(throttled)

    # -- $batch -------------------------------------------------------------------------------------

    def _send_chunk(self, items: list[tuple[int, GraphRequest]], started_at: float = 0.0) -> list[_Outcome]:
        """One `$batch` call for (attempt number, request) pairs; waits as Graph asked before returning."""
        if self._start_task is not None:
            self._start_task(started_at)
        attempt = max(item_attempt for item_attempt, _ in items)
        payload = {
            "requests": [self._sub_request(str(n), request) for n, (_, request) in enumerate(items, 1)]
        }
        content = jsonlib.dumps(payload).encode("utf-8")
        send_headers = self._headers(str(uuid.uuid4()), {"Content-Type": "application/json"})
        costs = [estimate_cost(r.method, r.url) for _, r in items]
        self._pacer.acquire()
        throttled = False
        started = time.monotonic()
        try:
            # Counted from when it is sent, as Graph counts it.
            counted_at = self.quota.reserve(costs) if self.quota is not None else 0.0
            try:
                response = self._http.post(f"{self._api}/$batch", content=content, headers=send_headers)
            except httpx.TransportError as exc:
                self._report("POST", "/$batch", None, attempt, started, transport_error=type(exc).__name__)
                outcomes = [
                    self._transport_outcome(
                        exc, r.method.upper(), r.url, is_retry_safe(r.method, r.idempotent)
                    )
                    for _, r in items
                ]
            else:
                outcomes, statuses = self._batch_outcomes(items, response)
                throttled = response.status_code == 429 or 429 in statuses
                for cost, outcome in zip(costs, outcomes, strict=True):
                    if isinstance(outcome, _Retry) and outcome.throttled:
                        self._account(cost, counted_at, 429, {})
                    elif isinstance(outcome, GraphResult):
                        self._account(cost, counted_at, outcome.status, outcome.headers)
                self._report(
                    "POST",
                    "/$batch",
                    response.status_code,
                    attempt,
                    started,
                    dict(response.headers),
                    statuses,
                )
        finally:
            self._pacer.release(throttled)
        outcomes = [self._stamped(outcome) for outcome in outcomes]
        # Wait only for items that will be sent again; the others have used up their retries.
        again = [
            (item_attempt, outcome)
            for (item_attempt, _), outcome in zip(items, outcomes, strict=True)
            if isinstance(outcome, _Retry) and item_attempt <= self.max_retries
        ]
        if again:
            self._wait_for([outcome for _, outcome in again], max(item_attempt for item_attempt, _ in again))
        return outcomes

    def _batch_outcomes(
        self, items: list[tuple[int, GraphRequest]], response: httpx.Response
    ) -> tuple[list[_Outcome], tuple[int, ...]]:
        headers = dict(response.headers)
        body = parse_body(response.content, headers)
        carries = isinstance(body, dict) and isinstance(body.get("responses"), list)
        if response.status_code >= 300 and not (response.status_code == 424 and carries):
            # The $batch call itself failed: the same verdict for every item, with its own retry safety.
            # (A 424 envelope that still carries responses is read like a 200.)
            return [self._whole_batch_outcome(r, response.status_code, headers, body) for _, r in items], ()
        answers: dict[str, Mapping[str, Any]] = {}
        if isinstance(body, dict) and isinstance(body.get("responses"), list):
            for answer in body["responses"]:
                if isinstance(answer, dict) and "id" in answer:
                    answers[str(answer["id"])] = answer
        outcomes: list[_Outcome] = []
        statuses: list[int] = []
        for n, (_, request) in enumerate(items, 1):
            method = request.method.upper()
            answer = answers.get(str(n))
            status = answer.get("status") if answer is not None else None
            if answer is None or not isinstance(status, int):
                outcomes.append(self._lost_outcome(request, response.status_code, headers))
                continue
            statuses.append(status)
            raw_headers = answer.get("headers")
            sub_headers = (
                {str(k): str(v) for k, v in raw_headers.items()} if isinstance(raw_headers, dict) else {}
            )
            outcomes.append(
                classify(method, request.url, request.idempotent, status, sub_headers, answer.get("body"))
            )
        return outcomes, tuple(statuses)

    def _whole_batch_outcome(
        self, request: GraphRequest, status: int, headers: Mapping[str, str], body: Any
    ) -> _Outcome:
        method = request.method.upper()
        error = error_from_response(status, headers, body, method="POST", path="/$batch")
        if status == 429:
            return _Retry(error, parse_retry_after(_header(headers, "retry-after")), throttled=True)
        if status in RETRYABLE_STATUSES:
            verdict = classify(method, request.url, request.idempotent, status, headers, body)
            return verdict
        return GraphResult(status, body, headers, error=error)

    def _lost_outcome(self, request: GraphRequest, status: int, headers: Mapping[str, str]) -> _Outcome:
        method = request.method.upper()
        message = f"the $batch answer (HTTP {status}) held no response for {method} {request.url}"
        if is_retry_safe(method, request.idempotent):
            return _Retry(GraphUnavailable(status, "MissingBatchResponse", message), None, throttled=False)
        unknown = GraphOutcomeUnknown(
            status,
            "OutcomeUnknown",
            f"{message}, so it is not known whether Graph applied it",
            _header(headers, "request-id"),
            method=method,
            path=request.url,
            hint=_REPAIR_HINT,
        )
        return GraphResult(status, None, headers, error=unknown)

    @staticmethod
    def _sub_request(request_id: str, request: GraphRequest) -> dict[str, Any]:
        sub: dict[str, Any] = {"id": request_id, "method": request.method.upper(), "url": request.url}
        headers = dict(request.headers or {})
        if request.body is not None:
            sub["body"] = request.body
            if not any(key.lower() == "content-type" for key in headers):
                headers["Content-Type"] = "application/json"
        if headers:
            sub["headers"] = headers
        return sub

    # -- shared by request and batch ------------------------------------------------------------------

    def _headers(self, client_request_id: str, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._token()}", "client-request-id": client_request_id}
        if extra:
            headers.update(extra)
        return headers

    def _url(self, path: str, params: Mapping[str, str] | None) -> str:
        if path.startswith(("http://", "https://")):
            if not self._same_origin(path):
                raise ValueError(
                    f"refusing to send a Graph request to {path!r}: it is not on {self.base_url}"
                )
            url = path
        else:
            url = self._api + (path if path.startswith("/") else "/" + path)
        if params:
            url += ("&" if "?" in url else "?") + encode_query(params)
        return url

    def _same_origin(self, url: str) -> bool:
        parts = urlsplit(url)
        return (parts.scheme.lower(), parts.netloc.lower()) == self._origin

    def _transport_outcome(self, exc: httpx.TransportError, method: str, path: str, safe: bool) -> _Outcome:
        host = urlsplit(self.base_url).netloc
        reason = str(exc) or "no detail"
        if is_tls_failure(exc):
            error: GraphError = GraphUnavailable(
                None,
                "TlsVerifyFailed",
                f"the TLS certificate presented for {host} is not trusted ({reason})",
                method=method,
                path=path,
                hint="If a proxy inspects HTTPS, set tenant.ca_bundle to its CA certificate (PEM)",
            )
            return GraphResult(NO_STATUS, None, {}, error=error)
        error = GraphUnavailable(
            None,
            "TransportError",
            f"{type(exc).__name__} talking to {host}: {reason}",
            method=method,
            path=path,
        )
        if safe or surely_not_sent(exc):
            return _Retry(error, None, throttled=False)
        unknown = GraphOutcomeUnknown(
            None,
            "OutcomeUnknown",
            f"the connection to {host} failed ({type(exc).__name__}) after {method} {path} was sent, "
            "so it is not known whether Graph applied it",
            method=method,
            path=path,
            hint=_REPAIR_HINT,
        )
        return GraphResult(NO_STATUS, None, {}, error=unknown)

    def _account(self, cost: Cost, counted_at: float, status: int, headers: Mapping[str, str]) -> None:
        """Tell the quota pacer what Graph made of a request it let through (or throttled)."""
        if self.quota is None:
            return
        if status == 429:
            self.quota.throttled(cost, counted_at)
        else:
            self.quota.observe(headers, cost)

    @staticmethod
    def _exhausted(retry: _Retry) -> GraphResult:
        return GraphResult(retry.error.status or NO_STATUS, None, {}, error=retry.error)

    def _stamped(self, outcome: _Outcome) -> _Outcome:
        if self._clock is None or not isinstance(outcome, _Retry):
            return outcome
        return replace(outcome, received_at=self._clock())

    def _wait(self, retry: _Retry, attempt: int) -> None:
        self._wait_for([retry], attempt)

    def _wait_for(self, retries: Sequence[_Retry], attempt: int) -> None:
        """Wait before the next attempt: a 429 holds every sender back, other failures only this one."""
        throttled = [r for r in retries if r.throttled]
        chosen = throttled or list(retries)
        now = self._clock() if self._clock is not None else None
        seconds = max(
            (r.retry_after if r.retry_after is not None else self._backoff.delay(attempt))
            - (now - r.received_at if now is not None and r.received_at is not None else 0.0)
            for r in chosen
        )
        if throttled:
            self._pacer.pause(seconds)
        elif seconds > 0:
            self._sleep(seconds)

    def _report(
        self,
        method: str,
        path: str,
        status: int | None,
        attempt: int,
        started: float,
        headers: Mapping[str, str] | None = None,
        batch_statuses: tuple[int, ...] = (),
        transport_error: str | None = None,
    ) -> None:
        if self._on_response is None:
            return
        headers = headers or {}
        self._on_response(
            ResponseInfo(
                method=method,
                path=path,
                status=status,
                attempt=attempt,
                elapsed_seconds=time.monotonic() - started,
                request_id=_header(headers, "request-id"),
                retry_after=parse_retry_after(_header(headers, "retry-after")),
                transport_error=transport_error,
                batch_statuses=batch_statuses,
            )
        )

    def _not_graph(self, result: GraphResult, what: str, expected: str) -> GraphError:
        body = result.body
        if isinstance(body, str):
            got = f"text {strip_html(body)!r} (not from Microsoft Graph; a proxy may have answered)"
        elif body is None:
            got = "an empty body"
        else:
            got = f"JSON of type {type(body).__name__}"
        return GraphError(result.status, "UnexpectedResponse", f"{what} returned {got}; expected {expected}")


def make_graph_client(
    config: Config,
    *,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_response: Callable[[ResponseInfo], None] | None = None,
    backoff: Backoff | None = None,
    clock: Callable[[], float] | None = None,
    pacing: bool | QuotaPacer = True,
) -> tuple[GraphClient, TokenProvider]:
    """The Graph client and its token provider for `config.tenant`, tuned by `config.graph`.

    `backoff` sets the waits for failures without `Retry-After`; a simulated tenant on a fast clock
    wants a much smaller base than the real Graph, and quota windows as much shorter (`pacing`).
    With `clock` (seconds, monotonic), a wait for `Retry-After` counts from when the answer arrived
    rather than from when the wait began.
    """
    from smartsync.graph.auth import TokenProvider

    tokens = TokenProvider(config.tenant, transport=transport)
    client = GraphClient(
        config.tenant.graph_url,
        tokens.token,
        transport=transport,
        verify=tls_verify(config.tenant.ca_bundle),
        concurrency=config.graph.concurrency,
        max_retries=config.graph.max_retries,
        timeout=config.graph.timeout_seconds,
        sleep=sleep,
        on_response=on_response,
        backoff=backoff,
        clock=clock,
        pacing=QuotaPacer(time_scale=config.graph.time_scale)
        if pacing is True and config.graph.time_scale != 1.0
        else pacing,
    )
    client.on_close(tokens.close)
    return client, tokens
