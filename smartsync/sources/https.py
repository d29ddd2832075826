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

import http.client
import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smartsync import __version__
from smartsync.config import SourceConfig
from smartsync.errors import ConfigError, InputDataError, Problem
from smartsync.roster import Roster
from smartsync.sources.realsmart import TABLES, read_realsmart_document

MAX_PAGES = 10_000
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


def _tls_context(source: SourceConfig) -> ssl.SSLContext:
    if source.ca_bundle is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(source.ca_bundle))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"source.ca_bundle: cannot load {source.ca_bundle} as PEM certificates ({exc}); "
            "point it at the CA certificate file of the export server or proxy."
        ) from None


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
    fetcher = _Fetcher(
        source, _tls_context(source), sleep, _BACKOFF_BASE_SECONDS if backoff_base is None else backoff_base
    )
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
    def __init__(
        self, source: SourceConfig, tls: ssl.SSLContext, sleep: Callable[[float], None], backoff_base: float
    ) -> None:
        assert source.token is not None and source.url is not None
        self.source = source
        self.token = source.token
        self.origin = _origin(source.url)
        self.opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=tls), _NoRedirect())
        self.sleep = sleep
        self.backoff_base = backoff_base

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
        request = urllib.request.Request(
            url,
            headers={
                "Authorization": f"Bearer {self.token.get_secret_value()}",
                "Accept": "application/json",
                "User-Agent": f"smartsync/{__version__}",
            },
        )
        try:
            with self.opener.open(request, timeout=self.source.timeout_seconds) as response:
                expected = response.headers.get("Content-Length")
                body: bytes = response.read()
        except urllib.error.HTTPError as exc:
            exc.close()
            raise self._http_error(url, exc) from None
        except http.client.IncompleteRead as exc:
            raise _Transient(f"the response was cut off after {len(exc.partial)} bytes") from None
        except TimeoutError:
            raise _Transient(f"no answer within {self.source.timeout_seconds:g} seconds") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise ConfigError(
                    f"The export server {shown(url)} presented a certificate that is not trusted "
                    f"({reason.verify_message}); if a proxy or a private CA signs it, set source.ca_bundle "
                    "to that CA's certificate file."
                ) from None
            raise _Transient(f"cannot connect ({reason})") from None
        except (ConnectionError, http.client.HTTPException, ssl.SSLError) as exc:
            raise _Transient(f"the connection failed ({type(exc).__name__})") from None
        if expected is not None and expected.isdigit() and int(expected) != len(body):
            raise _Transient(f"the response was cut off after {len(body)} of {expected} bytes")
        return body

    def _http_error(self, url: str, exc: urllib.error.HTTPError) -> Exception:
        status = exc.code
        if status in (401, 403):
            what = "refused the token" if status == 401 else "does not allow this token to read the export"
            return ConfigError(
                f"The export server {shown(url)} {what} (HTTP {status}). Check source.token (give it as "
                "${REALSMART_TOKEN} and set that variable), that it has not expired and that it may read "
                "the export. Nothing was written."
            )
        if status in _RETRY_STATUSES:
            retry_after = exc.headers.get("Retry-After") if exc.headers else None
            seconds = float(retry_after) if retry_after and _is_number(retry_after) else None
            return _Transient(f"the server answered HTTP {status}", seconds)
        if status == 404:
            return ConfigError(
                f"The export server has nothing at {shown(url)} (HTTP 404); check source.url. "
                "Nothing was written."
            )
        return self._failed(url, f"the server answered HTTP {status} {exc.reason}")

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


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are followed only to the same server: the Authorization header must not leak."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        if _origin(newurl) != _origin(req.full_url):
            raise urllib.error.HTTPError(
                req.full_url, code, f"redirect to another server ({shown(newurl)}) refused", headers, fp
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


__all__ = ["MAX_PAGES", "read_realsmart_https", "shown"]
