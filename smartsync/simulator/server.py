"""The HTTPS way in: the simulator served on loopback, with a certificate authority made at start.

`start_server` binds first (so `port=0` can pick a free port), then builds the `Simulator` with the
resulting base URL, so the login metadata and `@odata.nextLink` name the address clients really use.
The CA certificate it writes is what a client trusts (`ca_bundle` in smartsync's config); the
server's private key is written with mode 0600 and removed with the folder when the folder was a
temporary one. A folder given with `--cert-dir` keeps its certificates across restarts while they are
valid, and a start that fails (port taken, bad seed) never rewrites them.

Dropped-connection faults close the socket without an answer, exactly what a client sees when a
network path fails mid-request.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from smartsync.simulator.faults import ConnectionDropped
from smartsync.simulator.graph_errors import graph_error
from smartsync.simulator.http import SimRequest
from smartsync.simulator.runtime import Simulator
from smartsync.simulator.seedcheck import seed_problems
from smartsync.simulator.tenant import TenantState

CERTIFICATE_DAYS = 30
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")


class SeedError(ValueError):
    """The seed/state file cannot be used; the message names the file and what is wrong."""


def load_seed(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SeedError(f"{path}: no such state file; pass an existing JSON seed with --state") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SeedError(f"{path}: cannot read the state file ({exc.__class__.__name__})") from None
    except json.JSONDecodeError as exc:
        raise SeedError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    problems = seed_problems(data, str(path))
    if problems or not isinstance(data, dict):
        raise SeedError("\n  ".join([f"{path} cannot be used as a seed:", *problems]))
    try:
        TenantState.from_seed(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SeedError(
            f"{path}: an entry has a value of the wrong kind ({exc.__class__.__name__}: {exc}); "
            "compare it with the seed format in the README"
        ) from None
    return data


@dataclass(frozen=True)
class CertificatePaths:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def generate_certificates(folder: Path, host: str = "127.0.0.1") -> CertificatePaths:
    """A fresh CA and a server certificate for `host`, 127.0.0.1 and localhost, signed by that CA."""
    now = dt.datetime.now(dt.UTC)
    not_before, not_after = now - dt.timedelta(hours=1), now + dt.timedelta(days=CERTIFICATE_DAYS)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smartsync simulator CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    try:
        extra: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        extra = x509.DNSName(host)
    if extra not in names:
        names.append(extra)
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    paths = _certificate_paths(folder)
    key_bytes = server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Key first, CA last, each written aside and moved into place: a client never reads half a file.
    _write_aside(paths.server_key, key_bytes, 0o600)
    _write_aside(paths.server_cert, server_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write_aside(paths.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return paths


def _certificate_paths(folder: Path) -> CertificatePaths:
    return CertificatePaths(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")


def _write_aside(path: Path, data: bytes, mode: int) -> None:
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
    os.replace(partial, path)


def reusable_certificates(folder: Path, host: str = "127.0.0.1") -> CertificatePaths | None:
    """The certificates a previous start left in `folder`, when still valid for `host` for a day."""
    paths = _certificate_paths(folder)
    try:
        ca = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
        server = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
        serialization.load_pem_private_key(paths.server_key.read_bytes(), password=None)
        server.verify_directly_issued_by(ca)
        names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except Exception:  # missing, unreadable or not matching: make new ones
        return None
    try:
        wanted: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        wanted = x509.DNSName(host)
    fresh = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    if wanted not in names or min(ca.not_valid_after_utc, server.not_valid_after_utc) < fresh:
        return None
    return paths


class _SimulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    simulator: Simulator

    def __init__(self, address: tuple[str, int], tls: ssl.SSLContext) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.tls = tls

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake happens here, in the connection's own thread, so a slow client cannot
        # hold up the accept loop.
        try:
            wrapped = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(wrapped, client_address)
        finally:
            # socketserver closes only the plain socket it accepted; the TLS wrapper is ours to close.
            with contextlib.suppress(OSError):
                wrapped.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up (or being hung up on by a fault) is normal here; real bugs still print.
        import sys

        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | ssl.SSLError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _SimulatorHTTPServer

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        split = urlsplit(self.path)
        request = SimRequest(
            method=self.command.upper(),
            path=unquote(split.path),
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            raw_query=split.query,
        )
        simulator = self.server.simulator
        try:
            response = simulator.handle(request)
        except ConnectionDropped:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        except Exception:
            response = graph_error(
                500, "InternalServerError", "The simulator failed on this request.", simulator.clock.now()
            )
            import traceback

            traceback.print_exc()
        self.send_response(response.status)
        for name, value in response.headers.items():
            if name.lower() not in {"content-length", "connection"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the simulator's request log records every request, without secrets."""


for _method in _METHODS:
    setattr(_Handler, f"do_{_method}", _Handler._serve)


@dataclass
class RunningServer:
    simulator: Simulator
    base_url: str
    certificates: CertificatePaths
    _httpd: _SimulatorHTTPServer
    _thread: threading.Thread
    _temporary_folder: Path | None

    @property
    def ca_cert(self) -> Path:
        return self.certificates.ca_cert

    def shutdown(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        self.simulator.close()
        if self._temporary_folder is not None:
            shutil.rmtree(self._temporary_folder, ignore_errors=True)


def start_server(
    build: Callable[[str], Simulator],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    cert_dir: Path | None = None,
) -> RunningServer:
    """Bind, build the simulator for the bound address, and serve it on a background thread."""
    temporary = None
    if cert_dir is None:
        temporary = Path(tempfile.mkdtemp(prefix="smartsync-simulator-"))
        cert_dir = temporary
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        # Bind before touching the certificates: a start that fails (the port is taken, often by the
        # instance already running with the same --cert-dir) must leave that instance's CA alone.
        httpd = _SimulatorHTTPServer((host, port), tls)
    except OSError:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
        raise
    try:
        # A kept --cert-dir keeps its CA across restarts, so a trial config's ca_bundle stays valid.
        certificates = reusable_certificates(cert_dir, host) or generate_certificates(cert_dir, host)
        tls.load_cert_chain(certificates.server_cert, certificates.server_key)
    except BaseException:
        httpd.server_close()
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
        raise
    bound_port = httpd.server_address[1]
    url_host = f"[{host}]" if ":" in host else host
    base_url = f"https://{url_host}:{bound_port}"
    httpd.simulator = build(base_url)
    serve = functools.partial(httpd.serve_forever, poll_interval=0.1)
    thread = threading.Thread(target=serve, name="simulator-https", daemon=True)
    thread.start()
    return RunningServer(httpd.simulator, base_url, certificates, httpd, thread, temporary)


def write_ready_file(path: Path, running: RunningServer) -> None:
    """Write `{"base_url", "ca_cert"}` atomically, so a watcher never reads half a file."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(
        json.dumps({"base_url": running.base_url, "ca_cert": str(running.ca_cert.resolve())}),
        encoding="utf-8",
    )
    partial.replace(path)


def wait_for_stop_signal() -> None:
    """Block until SIGINT or SIGTERM arrives (main thread only)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
