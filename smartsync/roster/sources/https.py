"""`realsmart-https`: the Realsmart JSON export fetched over HTTPS with a bearer token.

The server answers `GET source.url` with `Authorization: Bearer <source.token>` and a JSON object in the
export's shape (DESIGN §4). A large export may come in pages: each page is such an object holding part
of the lists, plus `"next"`, the URL of the following page (absolute, or relative to the page), or
null / absent on the last page:

    {"users": [...], "groups": [...], "memberships": [...], "next": "https://host/export?page=2"}

The lists of all pages are joined, in order, and checked exactly as a .json export is (positions in
problems, `users[120]`, count across the joined lists). The token is only ever sent to the server of
`source.url`: a `next` link to another host is refused.

Failures and what they become: 401/403 → `ConfigError` (exit 2) naming the setting to check; 5xx, 429,
connection errors, timeouts and a body cut short → retried `source.retries` times with backoff, then
`InputDataError` (exit 2). A roster is returned only when every page arrived whole. No message ever
carries the token, and URLs are shown without their query string (which may hold a key).
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from smartsync.config import SourceConfig
from smartsync.errors import ConfigError, InputDataError, Problem
from smartsync.httpio import edge_client, is_tls_failure, parse_retry_after
from smartsync.roster.model import Roster
from smartsync.roster.sources.realsmart import TABLES, read_realsmart_document

MAX_PAGES = 10_000
MAX_REDIRECTS = 10
_BACKOFF_BASE_SECONDS = 1.0
_BACKOFF_CAP_SECONDS = 30.0
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class _Transient(Exception):
    """A failure worth retrying; the message says what happened, without the token."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Page:
    url: str
    document: dict[str, Any]


def shown(url: str) -> str:
    """A URL fit for a message: scheme, host, port and path, no query or credentials."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


def read_realsmart_https(
    source: SourceConfig, *, sleep: Callable[[float], None] = time.sleep, backoff_base: float | None = None
) -> Roster:
    """Fetch every page of the export at `source.url` and check it; see the module docstring."""
    assert source.url is not None  # the config model requires it for this type
    if source.token is None:
        raise ConfigError(
            "source.token is required for type realsmart-https; give it as token: ${REALSMART_TOKEN} "
            "and set that variable in the environment smartsync runs in."
        )
    with _Fetcher(source, sleep, _BACKOFF_BASE_SECONDS if backoff_base is None else backoff_base) as fetcher:
        pages = fetcher.all_pages(source.url)
    joined: dict[str, Any] = {}
    for page in pages:
        for key, value in page.document.items():
            if key == "next":
                continue
            if isinstance(value, list) and isinstance(joined.get(key, []), list):
                joined.setdefault(key, []).extend(value)
            else:
                joined[key] = value
    count = len(pages)
    label = f"realsmart-https: {shown(source.url)} ({count} page{'s' if count != 1 else ''})"
    return read_realsmart_document(joined, shown(source.url), label)


class _Fetcher:
    """The pages of one export, fetched with one httpx client (one connection, reused)."""

    def __init__(self, source: SourceConfig, sleep: Callable[[float], None], backoff_base: float) -> None:
        assert source.token is not None and source.url is not None
        self.source = source
        self.origin = _origin(source.url)
        self.http = edge_client(
            ca_bundle=source.ca_bundle,
            setting="source.ca_bundle",
            timeout_seconds=source.timeout_seconds,
            headers={
                "Authorization": f"Bearer {source.token.get_secret_value()}",
                "Accept": "application/json",
            },
        )
        self.sleep = sleep
        self.backoff_base = backoff_base

    def __enter__(self) -> _Fetcher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.http.close()

    def all_pages(self, first: str) -> list[Page]:
        pages: list[Page] = []
        seen: set[str] = set()
        url: str | None = first
        while url is not None:
            if url in seen:
                raise self._failed(
                    url, f"the 'next' link of page {len(pages)} points back at an earlier page"
                )
            if len(pages) >= MAX_PAGES:
                raise self._failed(url, f"more than {MAX_PAGES} pages; is the server's 'next' link right?")
            seen.add(url)
            page = self._page(url, len(pages) + 1)
            pages.append(page)
            url = self._next(page, len(pages))
        return pages

    def _next(self, page: Page, number: int) -> str | None:
        link = page.document.get("next")
        if link is None or link == "":
            return None
        if not isinstance(link, str):
            raise self._failed(page.url, f'page {number}: "next" must be a URL string or null')
        target = urllib.parse.urljoin(page.url, link)
        if _origin(target) != self.origin:
            raise self._failed(
                page.url,
                f"page {number}: the 'next' link points at {shown(target)}, another server than source.url; "
                "smartsync sends the token only to source.url's server",
            )
        return target

    def _page(self, url: str, number: int) -> Page:
        attempts = self.source.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                body = self._get(url)
                return Page(url, self._parse(body, number))
            except _Transient as exc:
                if attempt == attempts:
                    raise self._failed(
                        url,
                        f"page {number}: {exc} (after {attempts} attempt{'s' if attempts > 1 else ''}); "
                        "check that the export server is up, then run again",
                    ) from None
                delay = min(_BACKOFF_CAP_SECONDS, self.backoff_base * 2 ** (attempt - 1))
                self.sleep(max(delay, min(exc.retry_after or 0.0, _BACKOFF_CAP_SECONDS)))
        raise AssertionError("unreachable")

    def _get(self, url: str) -> bytes:
        """One page's body; redirects are followed only on the same server (the token must not leak)."""
        for _hop in range(MAX_REDIRECTS + 1):
            response = self._send(url)
            if not response.is_redirect:
                break
            target = urllib.parse.urljoin(url, response.headers.get("location", ""))
            if _origin(target) != self.origin:
                raise self._failed(
                    url,
                    f"the server redirects to {shown(target)}, another server than source.url; "
                    "smartsync sends the token only to source.url's server",
                )
            url = target
        else:
            raise self._failed(url, f"more than {MAX_REDIRECTS} redirects")
        if response.status_code >= 400:
            raise self._http_error(url, response)
        return response.content

    def _send(self, url: str) -> httpx.Response:
        try:
            return self.http.get(url)
        except httpx.TimeoutException:
            raise _Transient(f"no answer within {self.source.timeout_seconds:g} seconds") from None
        except httpx.RemoteProtocolError as exc:
            # httpx reads the announced Content-Length and fails when the body stops short of it.
            raise _Transient(f"the response was cut off ({_first_line(exc)})") from None
        except httpx.TransportError as exc:
            if is_tls_failure(exc):
                raise ConfigError(
                    f"The export server {shown(url)} presented a certificate that is not trusted; "
                    "if a proxy or a private CA signs it, set source.ca_bundle to that CA's certificate file."
                ) from None
            raise _Transient(f"cannot connect ({_first_line(exc) or type(exc).__name__})") from None

    def _http_error(self, url: str, response: httpx.Response) -> Exception:
        status = response.status_code
        if status in (401, 403):
            what = "refused the token" if status == 401 else "does not allow this token to read the export"
            return ConfigError(
                f"The export server {shown(url)} {what} (HTTP {status}). Check source.token (give it as "
                "${REALSMART_TOKEN} and set that variable), that it has not expired and that it may read "
                "the export. Nothing was written."
            )
        if status in _RETRY_STATUSES:
            return _Transient(
                f"the server answered HTTP {status}", parse_retry_after(response.headers.get("retry-after"))
            )
        if status == 404:
            return ConfigError(
                f"The export server has nothing at {shown(url)} (HTTP 404); check source.url. "
                "Nothing was written."
            )
        return self._failed(url, f"the server answered HTTP {status} {response.reason_phrase}")

    def _parse(self, body: bytes, number: int) -> dict[str, Any]:
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise _Transient("the response is not UTF-8 text") from None
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.pos >= len(text.rstrip()):
                raise _Transient(f"the response ends in the middle of the JSON ({len(body)} bytes)") from None
            raise _Transient(f"the response is not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(document, dict):
            keys = ", ".join(f'"{spec.key}": [...]' for spec in TABLES)
            raise _Transient(f"page {number} is not a JSON object {{{keys}}}")
        return document

    def _failed(self, url: str, message: str) -> InputDataError:
        return InputDataError([Problem(shown(url), None, None, message)], f"export at {shown(url)}")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else ""


__all__ = ["MAX_PAGES", "read_realsmart_https", "shown"]
