"""Shared helpers for the simulator runtime tests: a seed, tokens, an msal http adapter, certificates."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from smartsync.simulator import Simulator

TENANT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
SECRET = "Zq8~not-a-real-secret-value-0123456789"
ROLES = ["Group.ReadWrite.All", "GroupMember.ReadWrite.All", "User.Read.All"]


def make_seed(users: int = 3, groups: int = 1, **app: Any) -> dict[str, Any]:
    user_ids = [f"00000000-0000-0000-0001-{index:012d}" for index in range(users)]
    app_data: dict[str, Any] = {"client_id": CLIENT_ID, "client_secret": SECRET, "roles": list(ROLES)}
    app_data.update(app)
    return {
        "tenant_id": TENANT_ID,
        "app": app_data,
        "users": [
            {
                "id": user_id,
                "userPrincipalName": f"user{index}@school.example",
                "displayName": f"User {index}",
            }
            for index, user_id in enumerate(user_ids)
        ],
        "groups": [
            {
                "id": f"00000000-0000-0000-0002-{index:012d}",
                "displayName": f"Group {index}",
                "mailNickname": f"group{index}",
                "mailEnabled": False,
                "securityEnabled": True,
                "members": user_ids[:2],
                "owners": user_ids[:1],
            }
            for index in range(groups)
        ],
    }


def token_form(sim: Simulator, **fields: str) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "scope": "https://graph.microsoft.com/.default",
    }
    form.update(fields)
    return {key: value for key, value in form.items() if value != ""}


def request_token(sim: Simulator, tenant: str = TENANT_ID, **fields: str) -> httpx.Response:
    with httpx.Client(transport=sim.transport(), base_url=sim.base_url) as client:
        return client.post(f"/{tenant}/oauth2/v2.0/token", data=token_form(sim, **fields))


def access_token(sim: Simulator) -> str:
    response = request_token(sim)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def graph_client(sim: Simulator, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token or access_token(sim)}"}
    return httpx.Client(transport=sim.transport(), base_url=f"{sim.base_url}/v1.0", headers=headers)


def jwt_payload(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


class MsalHttpClient:
    """What msal expects of `http_client` (requests-like get/post), on top of an httpx.Client."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    @staticmethod
    def _headers(headers: dict[str, Any] | None) -> dict[str, str]:
        return {name: str(value) for name, value in (headers or {}).items() if value is not None}

    def get(self, url: str, params: Any = None, headers: Any = None, **kwargs: Any) -> httpx.Response:
        return self.client.get(url, params=params, headers=self._headers(headers))

    def post(
        self, url: str, params: Any = None, data: Any = None, headers: Any = None, **kwargs: Any
    ) -> httpx.Response:
        if isinstance(data, dict):  # msal hands the client assertion over as bytes, as requests accepts
            data = {
                key: value.decode("ascii") if isinstance(value, bytes) else value
                for key, value in data.items()
            }
        return self.client.post(url, params=params, data=data, headers=self._headers(headers))

    def close(self) -> None:
        self.client.close()


@functools.cache  # RSA key generation is the slowest step of these tests; one key per name suffices
def make_certificate(common_name: str = "smartsync app") -> tuple[str, x509.Certificate]:
    """An RSA private key (PEM text) and a self-signed certificate for it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    return pem, certificate


def key_credential(certificate: x509.Certificate, end: str = "2099-01-01T00:00:00Z") -> dict[str, Any]:
    return {
        "displayName": "CN=smartsync app",
        "endDateTime": end,
        "customKeyIdentifier": certificate.fingerprint(hashes.SHA1()).hex().upper(),
        "key": certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
    }


def thumbprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA1()).hex().upper()
