"""TLS trust for the sign-in and Graph endpoints, including a TLS-inspecting proxy's own CA.

Schools often sit behind a proxy that re-signs HTTPS with a CA of its own. `tenant.ca_bundle`
names that CA (PEM); it is trusted in addition to the usual public CAs, so the same config keeps
working when the proxy is bypassed. Contexts are built once per process: loading the public CA
list is the slowest part of opening a client.
"""

from __future__ import annotations

import functools
import os
import ssl
from pathlib import Path

import certifi

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


def tls_verify(ca_bundle: str | Path | None) -> ssl.SSLContext:
    """What to give httpx as `verify`: the public CAs, plus `ca_bundle` when one is configured."""
    bundle = str(ca_bundle) if ca_bundle is not None else None
    try:
        return _context(bundle, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    except FileNotFoundError:
        raise ConfigError(
            f"tenant.ca_bundle: {ca_bundle} does not exist. "
            "Give the path of the proxy's CA certificate (PEM)."
        ) from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"tenant.ca_bundle: {ca_bundle} is not a readable PEM certificate file ({exc}). "
            "Export the proxy's CA certificate in PEM (Base-64) form."
        ) from None
