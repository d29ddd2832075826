"""TokenProvider: tokens from a mocked Entra sign-in endpoint, and every sign-in failure explained."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from smartsync.config import Config, TenantConfig
from smartsync.errors import EXIT_AUTH, AuthError, ConfigError
from smartsync.graph import TokenError, TokenProvider, auth, make_graph_client
from smartsync.graph.auth import certificate_credential, decode_jwt_claims

TENANT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_ID = "66666666-7777-8888-9999-000000000000"
SECRET = "Xq8~s3cr3t.VALUE_never-to-be-shown"
LOGIN = "https://login.microsoftonline.com"


def jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


ACCESS_TOKEN = jwt({"roles": ["User.Read.All", "Group.ReadWrite.All"], "tid": TENANT_ID, "appid": CLIENT_ID})


def openid_configuration(login: str) -> dict[str, Any]:
    return {
        "token_endpoint": f"{login}/{TENANT_ID}/oauth2/v2.0/token",
        "authorization_endpoint": f"{login}/{TENANT_ID}/oauth2/v2.0/authorize",
        "issuer": f"{login}/{TENANT_ID}/v2.0",
    }


def tenant(**overrides: Any) -> TenantConfig:
    values: dict[str, Any] = {"tenant_id": TENANT_ID, "client_id": CLIENT_ID, "client_secret": SECRET}
    values.update(overrides)
    return TenantConfig.model_validate(values)


@pytest.fixture
def login() -> Iterator[respx.MockRouter]:
    # assert_all_mocked: any request msal makes that we did not expect (instance discovery...) fails the test.
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        router.get(f"{LOGIN}/{TENANT_ID}/v2.0/.well-known/openid-configuration").respond(
            200, json=openid_configuration(LOGIN)
        )
        # msal asks Microsoft's instance discovery for the host's aliases after a failed token request.
        router.get(f"{LOGIN}/common/discovery/instance").respond(
            200, json={"tenant_discovery_endpoint": "unused", "metadata": []}
        )
        yield router


def token_route(router: respx.MockRouter, login: str = LOGIN) -> respx.Route:
    return router.post(f"{login}/{TENANT_ID}/oauth2/v2.0/token")


def aad_error(code: int, error: str, description: str) -> httpx.Response:
    body = {
        "error": error,
        "error_description": f"AADSTS{code}: {description}\r\nTrace ID: abc\r\nCorrelation ID: def",
        "error_codes": [code],
        "trace_id": "abc",
    }
    return httpx.Response(400 if code != 7000215 else 401, json=body)


def test_token_is_fetched_once_and_cached(login: respx.MockRouter) -> None:
    route = token_route(login).respond(
        200, json={"token_type": "Bearer", "expires_in": 3599, "access_token": ACCESS_TOKEN}
    )
    provider = TokenProvider(tenant())

    assert provider.token() == ACCESS_TOKEN
    assert provider.token() == ACCESS_TOKEN
    claims = provider.claims()

    assert route.call_count == 1
    form = parse_qs(route.calls.last.request.content.decode())
    assert form["grant_type"] == ["client_credentials"]
    assert form["client_id"] == [CLIENT_ID]
    assert form["client_secret"] == [SECRET]
    assert form["scope"] == ["https://graph.microsoft.com/.default"]
    assert claims["roles"] == ["User.Read.All", "Group.ReadWrite.All"] and claims["tid"] == TENANT_ID


def test_constructing_the_provider_sends_nothing(login: respx.MockRouter) -> None:
    TokenProvider(tenant())
    assert len(login.calls) == 0


def test_token_near_expiry_is_fetched_again(login: respx.MockRouter, monkeypatch: pytest.MonkeyPatch) -> None:
    route = token_route(login).respond(
        200, json={"token_type": "Bearer", "expires_in": 200, "access_token": ACCESS_TOKEN}
    )
    now = [1000.0]
    monkeypatch.setattr(auth, "time", SimpleNamespace(monotonic=lambda: now[0]))
    provider = TokenProvider(tenant())

    provider.token()
    now[0] += 150  # a short-lived token is kept for nine tenths of its life
    provider.token()
    assert route.call_count == 1
    now[0] += 40
    provider.token()
    assert route.call_count == 2


MAPPED = [
    (7000215, "invalid_client", "Invalid client secret provided.", "secret's ID instead of its Value"),
    (7000222, "invalid_client", "The provided client secret keys are expired.", "has expired"),
    (700016, "unauthorized_client", "Application with identifier was not found.", "tenant.client_id"),
    (90002, "invalid_request", "Tenant not found.", "tenant.tenant_id"),
    (90023, "invalid_request", "Invalid STS request.", "tenant.tenant_id"),
    (
        700027,
        "invalid_client",
        "Client assertion contains an invalid signature.",
        "certificate is not registered",
    ),
    (1002012, "invalid_scope", "The provided value for scope is not valid.", "tenant.graph_endpoint"),
    (
        70011,
        "invalid_scope",
        "The provided value for the input parameter 'scope' is not valid.",
        "tenant.cloud",
    ),
    (
        7000218,
        "invalid_client",
        "The request body must contain client_assertion or client_secret.",
        "client_secret",
    ),
]


@pytest.mark.parametrize(("code", "error", "description", "advice"), MAPPED)
def test_sign_in_errors_say_what_to_fix(
    login: respx.MockRouter, code: int, error: str, description: str, advice: str
) -> None:
    token_route(login).mock(return_value=aad_error(code, error, description))

    with pytest.raises(TokenError) as caught:
        TokenProvider(tenant()).token()

    text = str(caught.value)
    assert caught.value.code == f"AADSTS{code}"
    assert f"AADSTS{code}" in text and advice in text
    assert caught.value.exit_code == EXIT_AUTH and isinstance(caught.value, AuthError)
    assert SECRET not in text


def test_unknown_tenant_at_discovery(login: respx.MockRouter) -> None:
    other = "00000000-0000-0000-0000-00000000dead"
    login.get(f"{LOGIN}/{other}/v2.0/.well-known/openid-configuration").respond(
        400,
        json={"error": "invalid_tenant", "error_description": f"AADSTS90002: Tenant '{other}' not found."},
    )

    with pytest.raises(TokenError) as caught:
        TokenProvider(tenant(tenant_id=other)).token()

    assert caught.value.code == "AADSTS90002"
    assert f"Tenant {other} was not found" in str(caught.value)


def test_secret_echoed_by_the_server_is_never_shown(login: respx.MockRouter) -> None:
    token_route(login).mock(
        return_value=httpx.Response(
            401,
            json={
                "error": "invalid_client",
                "error_description": f"Bad secret {SECRET} (assertion {ACCESS_TOKEN})",
            },
        )
    )

    with pytest.raises(TokenError) as caught:
        TokenProvider(tenant()).token()

    text = str(caught.value)
    assert SECRET not in text and ACCESS_TOKEN not in text and "***" in text


def test_missing_credential_is_refused_before_signing_in(login: respx.MockRouter) -> None:
    with pytest.raises(TokenError, match=r"tenant\.client_secret"):
        TokenProvider(tenant(client_secret=None)).token()
    assert len(login.calls) == 0


def test_unreachable_login_names_the_host_and_the_ca_bundle() -> None:
    with respx.mock(assert_all_mocked=True) as router:
        router.get(url__startswith=LOGIN).mock(
            side_effect=httpx.ConnectError("[Errno 111] Connection refused")
        )
        with pytest.raises(TokenError) as caught:
            TokenProvider(tenant()).token()
    text = str(caught.value)
    assert "login.microsoftonline.com" in text and "tenant.ca_bundle" in text and "HTTPS_PROXY" in text


def test_untrusted_proxy_certificate_suggests_ca_bundle() -> None:
    with respx.mock(assert_all_mocked=True) as router:
        router.get(url__startswith=LOGIN).mock(
            side_effect=httpx.ConnectError(
                "[SSL: CERTIFICATE_VERIFY_FAILED] unable to get local issuer certificate"
            )
        )
        with pytest.raises(TokenError, match=r"not trusted .*tenant\.ca_bundle"):
            TokenProvider(tenant()).token()


def test_server_error_at_the_token_endpoint(login: respx.MockRouter) -> None:
    token_route(login).respond(
        503,
        json={"error": "temporarily_unavailable", "error_description": "The service is busy.\r\nTrace ID: x"},
    )

    with pytest.raises(TokenError) as caught:
        TokenProvider(tenant()).token()

    text = str(caught.value)
    assert (
        "HTTP 503 (temporarily_unavailable)" in text and "The service is busy" in text and "try again" in text
    )


def test_html_answer_from_a_proxy(login: respx.MockRouter) -> None:
    token_route(login).respond(407, text="<html><body><h1>Proxy Authentication Required</h1></body></html>")

    with pytest.raises(TokenError) as caught:
        TokenProvider(tenant()).token()

    text = str(caught.value)
    assert "Proxy Authentication Required" in text and "<h1>" not in text


def test_a_non_microsoft_login_host_skips_instance_discovery() -> None:
    local = "https://127.0.0.1:8443"
    with respx.mock(assert_all_mocked=True) as router:
        router.get(f"{local}/{TENANT_ID}/v2.0/.well-known/openid-configuration").respond(
            200, json=openid_configuration(local)
        )
        route = token_route(router, local).respond(
            200, json={"token_type": "Bearer", "expires_in": 3599, "access_token": ACCESS_TOKEN}
        )
        provider = TokenProvider(tenant(authority_host=local, graph_endpoint=local))
        assert provider.token() == ACCESS_TOKEN
        assert len(router.calls) == 2 and route.call_count == 1
    assert parse_qs(route.calls.last.request.content.decode())["scope"] == [f"{local}/.default"]


# -- certificates ---------------------------------------------------------------------------------------


def make_certificate() -> tuple[bytes, bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smartsync test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return (
        key_pem,
        cert.public_bytes(serialization.Encoding.PEM),
        cert.fingerprint(hashes.SHA1()).hex().upper(),
    )


@pytest.fixture(scope="module")
def certificate() -> tuple[bytes, bytes, str]:
    return make_certificate()


def test_certificate_signs_in_with_its_computed_thumbprint(
    login: respx.MockRouter, tmp_path: Path, certificate: tuple[bytes, bytes, str]
) -> None:
    key_pem, cert_pem, thumbprint = certificate
    pem = tmp_path / "app.pem"
    pem.write_bytes(key_pem + cert_pem)
    route = token_route(login).respond(
        200, json={"token_type": "Bearer", "expires_in": 3599, "access_token": ACCESS_TOKEN}
    )

    provider = TokenProvider(tenant(client_secret=None, certificate={"path": str(pem)}))
    assert provider.token() == ACCESS_TOKEN

    form = parse_qs(route.calls.last.request.content.decode())
    assert "client_secret" not in form
    assert form["client_assertion_type"] == ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
    header_part = form["client_assertion"][0].split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(header_part + "=" * (-len(header_part) % 4)))
    assert (
        base64.urlsafe_b64decode(header["x5t"] + "=" * (-len(header["x5t"]) % 4)).hex().upper() == thumbprint
    )


def test_pfx_with_passphrase_signs_in(
    login: respx.MockRouter, tmp_path: Path, certificate: tuple[bytes, bytes, str]
) -> None:
    key_pem, cert_pem, thumbprint = certificate
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    pfx = tmp_path / "app.pfx"
    pfx.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"app",
            key,
            x509.load_pem_x509_certificate(cert_pem),
            None,
            serialization.BestAvailableEncryption(b"pw-1234"),
        )
    )
    route = token_route(login).respond(
        200, json={"token_type": "Bearer", "expires_in": 3599, "access_token": ACCESS_TOKEN}
    )

    certificate_config = {"path": str(pfx), "passphrase": "pw-1234"}
    assert TokenProvider(tenant(client_secret=None, certificate=certificate_config)).token() == ACCESS_TOKEN

    sent = route.calls.last.request.content.decode()
    header_part = parse_qs(sent)["client_assertion"][0].split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(header_part + "=" * (-len(header_part) % 4)))
    named_by = header.get("x5t#S256") or header.get("x5t")
    assert named_by  # msal names the certificate by one of its thumbprints
    if "x5t#S256" not in header:
        assert base64.urlsafe_b64decode(named_by + "=" * (-len(named_by) % 4)).hex().upper() == thumbprint
    assert "pw-1234" not in sent


def test_certificate_credential_rules(certificate: tuple[bytes, bytes, str]) -> None:
    key_pem, cert_pem, thumbprint = certificate

    assert certificate_credential(key_pem + cert_pem, None, None)["thumbprint"] == thumbprint
    assert certificate_credential(key_pem, "ab:cd:ef", "pw") == {
        "private_key": key_pem.decode(),
        "thumbprint": "ABCDEF",
        "passphrase": "pw",
    }
    with pytest.raises(ConfigError, match="no private key"):
        certificate_credential(cert_pem, None, None)
    with pytest.raises(ConfigError, match="thumbprint"):
        certificate_credential(key_pem, None, None)


def test_claims_of_something_that_is_not_a_jwt() -> None:
    assert decode_jwt_claims("opaque-token") == {}
    assert decode_jwt_claims("a.!!!.c") == {}
    assert decode_jwt_claims(ACCESS_TOKEN)["appid"] == CLIENT_ID


# -- wiring ---------------------------------------------------------------------------------------------


def test_make_graph_client_uses_the_tenant_and_graph_settings(login: respx.MockRouter) -> None:
    token_route(login).respond(
        200, json={"token_type": "Bearer", "expires_in": 3599, "access_token": ACCESS_TOKEN}
    )
    users = login.get("https://graph.microsoft.com/v1.0/users").respond(200, json={"value": [{"id": "u1"}]})
    config = Config.model_validate(
        {
            "tenant": {"tenant_id": TENANT_ID, "client_id": CLIENT_ID, "client_secret": SECRET},
            "source": {"type": "realsmart-export", "path": "export"},
            "school": {"code": "NFA"},
            "graph": {"concurrency": 2, "max_retries": 1},
        }
    )

    client, tokens = make_graph_client(config)
    with client:
        assert client.get_all("/users") == [{"id": "u1"}]
    tokens.close()

    assert client.concurrency == 2 and client.max_retries == 1
    assert users.calls.last.request.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"


def test_missing_ca_bundle_is_a_config_error(tmp_path: Path) -> None:
    provider = TokenProvider(tenant(ca_bundle=str(tmp_path / "missing.pem")))
    with pytest.raises(ConfigError, match=r"tenant\.ca_bundle"):
        provider.token()
