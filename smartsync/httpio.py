"""What every HTTP edge shares: TLS trust, proxies, timeouts and the reading of `Retry-After`.

smartsync speaks HTTP in three places, all through httpx: the Graph client and its sign-in
(`smartsync.graph`), the roster's HTTPS export (`roster.sources.https`) and the notification
webhook (`notify`). They trust the same CAs, take proxies from the environment the same way and
read `Retry-After` the same way, so a school behind a TLS-inspecting proxy sets it up once.

Schools often sit behind a proxy that re-signs HTTPS with a CA of its own. A `ca_bundle` setting
names that CA (PEM); it is trusted in addition to the usual public CAs, so the same config keeps
working when the proxy is bypassed. Contexts are built once per process: loading the public CA
list is the slowest part of opening a client.
"""

from __future__ import annotations

import functools
import os
import ssl
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import certifi
import httpx

from smartsync import __version__
from smartsync.errors import ConfigError


@functools.cache
def _context(ca_bundle: str | None, cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    # Same public trust as httpx's default (SSL_CERT_FILE / SSL_CERT_DIR, else certifi).
    if cert_file:
        context = ssl.create_default_context(cafile=cert_file)
    elif cert_dir:
        context = ssl.create_default_context(capath=cert_dir)
    else:
        context = ssl.create_default_context(cafile=certifi.where())
    if ca_bundle is not None:
        context.load_verify_locations(cafile=ca_bundle)
    return context


# Graph's Retry-After is seconds to wait; anything beyond an hour is a mistake we should not obey.
MAX_RETRY_AFTER_SECONDS = 3600.0


def tls_verify(ca_bundle: str | Path | None, setting: str = "tenant.ca_bundle") -> ssl.SSLContext:
    """What to give httpx as `verify`: the public CAs, plus `ca_bundle` when one is configured.

    `setting` names the config key the bundle came from, for the error message.
    """
    bundle = str(ca_bundle) if ca_bundle is not None else None
    try:
        return _context(bundle, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    except FileNotFoundError:
        raise ConfigError(
            f"{setting}: {ca_bundle} does not exist. Give the path of the proxy's CA certificate (PEM)."
        ) from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"{setting}: {ca_bundle} is not a readable PEM certificate file ({exc}). "
            "Export the proxy's CA certificate in PEM (Base-64) form."
        ) from None


def edge_client(
    *,
    ca_bundle: str | Path | None,
    setting: str,
    timeout_seconds: float,
    headers: dict[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """An httpx client for an edge that is not Graph, trusting and proxying as the Graph client does.

    Redirects are not followed: a caller that sends a credential decides where it may go.
    """
    return httpx.Client(
        verify=tls_verify(ca_bundle, setting),
        trust_env=True,  # HTTPS_PROXY / ALL_PROXY / NO_PROXY, as for Graph
        timeout=httpx.Timeout(timeout_seconds),
        follow_redirects=False,
        headers={"User-Agent": f"smartsync/{__version__}", **(headers or {})},
        transport=transport,
    )


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` value: integer or fractional seconds, or an HTTP-date."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def is_tls_failure(exc: BaseException) -> bool:
    """Whether a transport failure is a certificate problem (retrying will not help)."""
    text = str(exc)
    return "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text.lower()
