"""Shared pieces of the set-up acceptance tests: an app registration seed, the simulator served over
HTTPS, a config pointing at it, certificates made on the spot, and the CLI run in-process."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from certs import self_signed
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from smartsync.cli import cli
from smartsync.simulator import Simulator
from smartsync.simulator.server import RunningServer, start_server

TENANT_ID = "5d1a7c3e-0b2f-4e6a-9c8d-1f2e3d4c5b6a"
CLIENT_ID = "c0ffee00-1234-4abc-8def-0123456789ab"
# Shaped like a real secret Value (40 characters with '~'); its first three characters are the hint.
SECRET = "Xy7~Q2m.Fh3kLp9_Rt5vWz1-Bn8cDs4gHj6eKa0u"
SECRET_ID = "8e2f6a1c-3b4d-4e5f-8a9b-0c1d2e3f4a5b"  # what the portal shows in the "Secret ID" column
LEAST_PRIVILEGE = [
    "User.Read.All",
    "Group.ReadWrite.All",
    "GroupMember.ReadWrite.All",
    "AdministrativeUnit.ReadWrite.All",
    "Team.Create",
    "TeamSettings.ReadWrite.All",
    "EduRoster.ReadWrite.All",
    "TeamMember.ReadWrite.All",
    "Application.Read.All",
]
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def iso_in(days: float) -> str:
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def secret_credential(days_left: float, name: str = "smartsync") -> dict[str, Any]:
    return {
        "displayName": name,
        "hint": SECRET[:3],
        "startDateTime": iso_in(-300),
        "endDateTime": iso_in(days_left),
    }


def app_seed(
    *,
    roles: Sequence[str] = LEAST_PRIVILEGE,
    password_credentials: Sequence[dict[str, Any]] | None = None,
    key_credentials: Sequence[dict[str, Any]] = (),
    users: Sequence[dict[str, Any]] = (),
    groups: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    return {
        "tenant_id": TENANT_ID,
        "app": {
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "roles": list(roles),
            "password_credentials": list(
                password_credentials if password_credentials is not None else [secret_credential(365)]
            ),
            "key_credentials": list(key_credentials),
        },
        "users": list(users),
        "groups": list(groups),
        "administrative_units": [],
    }


@contextmanager
def https_simulator(tmp_path: Path, seed: dict[str, Any], **options: Any) -> Iterator[RunningServer]:
    """The simulator on a free loopback port over HTTPS, with its CA in `tmp_path/simulator-ca`."""
    running = start_server(
        lambda base_url: Simulator(seed, base_url=base_url, **options), cert_dir=tmp_path / "simulator-ca"
    )
    try:
        yield running
    finally:
        running.shutdown()


def write_config(
    tmp_path: Path,
    base_url: str,
    ca_cert: Path | None,
    *,
    tenant: dict[str, Any] | None = None,
    name: str = "smartsync.yaml",
    **sections: Any,
) -> Path:
    """A config file for the served simulator; `tenant` entries set to None are left out."""
    tenant_section: dict[str, Any] = {
        "tenant_id": TENANT_ID,
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "authority_host": base_url,
        "graph_endpoint": base_url,
        "ca_bundle": str(ca_cert) if ca_cert else None,
    }
    tenant_section.update(tenant or {})
    data: dict[str, Any] = {
        "tenant": {k: v for k, v in tenant_section.items() if v is not None},
        "source": {"type": "realsmart-export", "path": str(tmp_path / "export")},
        "school": {"code": "NFA", "name": "Northfield Academy"},
        "journal": {"path": str(tmp_path / "journal" / "changes.jsonl")},
    }
    data.update(sections)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    path.chmod(0o600)
    return path


def invoke(config: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], env=env, catch_exceptions=False)


def without_proxies() -> dict[str, str]:
    """An environment for subprocesses with no proxy, so loopback is reached directly."""
    return {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}


@dataclass(frozen=True)
class AppCertificate:
    """A key pair and self-signed certificate, as an admin makes with openssl for the app."""

    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @classmethod
    def make(cls, days: int = 365) -> AppCertificate:
        key, cert = self_signed("smartsync", days)
        return cls(key, cert)

    @property
    def thumbprint(self) -> str:
        return self.cert.fingerprint(hashes.SHA1()).hex().upper()

    @property
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def write_pem(self, path: Path) -> Path:
        """Private key and certificate in one PEM file (cat key.pem cert.pem > app.pem)."""
        key = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode("ascii")
        path.write_text(key + self.cert_pem, encoding="ascii")
        path.chmod(0o600)
        return path

    def write_pfx(self, path: Path, passphrase: str) -> Path:
        encryption = serialization.BestAvailableEncryption(passphrase.encode("utf-8"))
        path.write_bytes(
            pkcs12.serialize_key_and_certificates(b"smartsync", self.key, self.cert, None, encryption)
        )
        path.chmod(0o600)
        return path

    def key_credential(self, days_left: float = 365, name: str = "smartsync certificate") -> dict[str, Any]:
        """How the app registration lists the uploaded certificate (customKeyIdentifier: base64 SHA-1)."""
        import base64

        return {
            "displayName": name,
            "customKeyIdentifier": base64.b64encode(self.cert.fingerprint(hashes.SHA1())).decode("ascii"),
            "startDateTime": iso_in(-1),
            "endDateTime": iso_in(days_left),
            "key": self.cert_pem,
        }
