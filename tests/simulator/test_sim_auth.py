"""The simulated login endpoints: msal acquires tokens; each Entra error case gives its AADSTS code."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import httpx
import jwt
import msal
import pytest
from cryptography.hazmat.primitives import serialization
from test_sim_support import (
    CLIENT_ID,
    ROLES,
    SECRET,
    TENANT_ID,
    MsalHttpClient,
    access_token,
    graph_client,
    jwt_payload,
    key_credential,
    make_certificate,
    make_seed,
    request_token,
    thumbprint,
)

from smartsync.simulator import Simulator


def entra_error(response: httpx.Response) -> tuple[int, str, int]:
    body = response.json()
    assert set(body) >= {
        "error",
        "error_description",
        "error_codes",
        "timestamp",
        "trace_id",
        "correlation_id",
    }
    assert body["error_description"].startswith(f"AADSTS{body['error_codes'][0]}: ")
    assert "Trace ID: " in body["error_description"]
    return response.status_code, body["error"], body["error_codes"][0]


def msal_app(sim: Simulator, credential: object, **kwargs: object) -> msal.ConfidentialClientApplication:
    http = MsalHttpClient(httpx.Client(transport=sim.transport()))
    return msal.ConfidentialClientApplication(
        CLIENT_ID,
        client_credential=credential,
        authority=f"{sim.base_url}/{TENANT_ID}",
        http_client=http,
        **kwargs,
    )


@pytest.mark.parametrize("instance_discovery", [None, False])
def test_msal_gets_a_token_whose_roles_are_the_apps_grants(instance_discovery: bool | None) -> None:
    sim = Simulator(make_seed())
    app = msal_app(sim, SECRET, instance_discovery=instance_discovery)

    result = app.acquire_token_for_client(scopes=[f"{sim.base_url}/.default"])

    assert "access_token" in result, result
    claims = jwt_payload(result["access_token"])
    assert sorted(claims["roles"]) == sorted(ROLES)
    assert claims["tid"] == TENANT_ID and claims["appid"] == CLIENT_ID
    assert claims["exp"] - claims["iat"] == pytest.approx(3599, abs=1)
    assert claims["nbf"] <= sim.clock.now() < claims["exp"]


def test_the_token_opens_graph_and_a_bad_one_gets_401() -> None:
    sim = Simulator(make_seed())
    token = access_token(sim)
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"

    with graph_client(sim, token) as client:
        assert client.get("/users").status_code == 200
    for bad in ["", "Bearer not-a-jwt", f"Bearer {forged}", f"Basic {token}"]:
        with httpx.Client(transport=sim.transport(), base_url=sim.base_url) as raw:
            response = raw.get("/v1.0/users", headers={"Authorization": bad} if bad else {})
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
        assert "www-authenticate" in response.headers


def test_a_token_expires_on_the_simulated_clock() -> None:
    sim = Simulator(make_seed())
    token = access_token(sim)
    sim.clock.advance(3599 + 301)  # lifetime plus the five minutes of clock skew Graph allows

    with graph_client(sim, token) as client:
        response = client.get("/users")

    assert response.status_code == 401
    assert "expired" in response.json()["error"]["message"]


def test_token_lifetime_given_to_the_client_is_in_real_seconds() -> None:
    sim = Simulator(make_seed(), time_scale=10)
    assert request_token(sim).json()["expires_in"] == 359


def test_missing_roles_claim_when_nothing_is_granted() -> None:
    sim = Simulator(make_seed(roles=[]))
    assert "roles" not in jwt_payload(access_token(sim))


@pytest.mark.parametrize(
    ("fields", "tenant", "expected"),
    [
        ({"client_secret": "wrong-secret"}, TENANT_ID, (401, "invalid_client", 7000215)),
        (
            {"client_id": "99999999-0000-0000-0000-000000000000"},
            TENANT_ID,
            (400, "unauthorized_client", 700016),
        ),
        ({}, "99999999-9999-9999-9999-999999999999", (400, "invalid_request", 90002)),
        ({"scope": "User.Read.All"}, TENANT_ID, (400, "invalid_scope", 1002012)),
        ({"scope": "https://other.example/.default"}, TENANT_ID, (400, "invalid_scope", 70011)),
        ({"client_secret": ""}, TENANT_ID, (401, "invalid_client", 7000218)),
        ({"grant_type": "password"}, TENANT_ID, (400, "unsupported_grant_type", 70003)),
    ],
)
def test_token_endpoint_errors_have_entras_codes(
    fields: dict[str, str], tenant: str, expected: tuple[int, str, int]
) -> None:
    sim = Simulator(make_seed())
    response = request_token(sim, tenant, **fields)
    assert entra_error(response) == expected
    assert SECRET not in response.text


def test_an_expired_secret_is_refused_with_7000222() -> None:
    expired = {"displayName": "old", "endDateTime": "2020-01-01T00:00:00Z", "hint": SECRET[:3]}
    sim = Simulator(make_seed(password_credentials=[expired]))
    assert entra_error(request_token(sim)) == (401, "invalid_client", 7000222)


def test_a_secret_still_valid_is_accepted_next_to_an_expired_one() -> None:
    credentials = [
        {"displayName": "current", "endDateTime": "2099-01-01T00:00:00.0000000Z", "hint": SECRET[:3]},
        {"displayName": "old", "endDateTime": "2020-01-01T00:00:00Z", "hint": "old"},
    ]
    sim = Simulator(make_seed(client_secrets=[SECRET, "old-secret"], password_credentials=credentials))
    assert request_token(sim).status_code == 200
    assert entra_error(request_token(sim, client_secret="old-secret"))[2] == 7000222


@pytest.mark.parametrize("use_sha256", [False, True])
def test_msal_certificate_assertion_gets_a_token(use_sha256: bool) -> None:
    private_key, certificate = make_certificate()
    sim = Simulator(make_seed(client_secret=None, key_credentials=[key_credential(certificate)]))
    if use_sha256:  # msal then signs PS256 with an x5t#S256 header
        public_pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
        credential = {"private_key": private_key, "public_certificate": public_pem}
    else:  # RS256 with an x5t (SHA-1) header
        credential = {"private_key": private_key, "thumbprint": thumbprint(certificate)}
    app = msal_app(sim, credential)

    result = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])

    assert "access_token" in result, result
    assert sorted(jwt_payload(result["access_token"])["roles"]) == sorted(ROLES)


def _assertion(sim: Simulator, private_key: str, thumb: str, **claims: object) -> str:
    payload = {
        "aud": f"{sim.base_url}/{TENANT_ID}/oauth2/v2.0/token",
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "exp": time.time() + 600,
        "iat": time.time(),
        "jti": "x",
    }
    payload.update(claims)
    x5t = base64.urlsafe_b64encode(bytes.fromhex(thumb)).rstrip(b"=").decode("ascii")
    return jwt.encode(payload, private_key, algorithm="RS256", headers={"x5t": x5t})


def _assertion_response(sim: Simulator, assertion: str) -> httpx.Response:
    return request_token(
        sim,
        client_secret="",
        client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        client_assertion=assertion,
    )


def test_certificate_assertion_errors() -> None:
    private_key, certificate = make_certificate()
    other_key, other_certificate = make_certificate("someone else")
    sim = Simulator(make_seed(key_credentials=[key_credential(certificate)]))
    thumb = thumbprint(certificate)

    assert _assertion_response(sim, _assertion(sim, private_key, thumb)).status_code == 200
    unregistered = _assertion_response(sim, _assertion(sim, other_key, thumbprint(other_certificate)))
    assert entra_error(unregistered) == (401, "invalid_client", 700027)
    assert "not registered" in unregistered.json()["error_description"]
    forged = _assertion_response(sim, _assertion(sim, other_key, thumb))  # right x5t, wrong key
    assert entra_error(forged) == (401, "invalid_client", 700027)
    assert "signature" in forged.json()["error_description"]
    stale = _assertion_response(sim, _assertion(sim, private_key, thumb, exp=1_000_000, iat=999_000))
    assert entra_error(stale)[2] == 700024
    wrong_issuer = _assertion_response(sim, _assertion(sim, private_key, thumb, iss="someone", sub="someone"))
    assert entra_error(wrong_issuer)[2] == 700021
    wrong_audience = _assertion_response(
        sim, _assertion(sim, private_key, thumb, aud="https://elsewhere/token")
    )
    assert entra_error(wrong_audience)[2] == 50013


def test_expired_certificate_is_refused() -> None:
    private_key, certificate = make_certificate()
    sim = Simulator(make_seed(key_credentials=[key_credential(certificate, end="2020-01-01T00:00:00Z")]))
    response = _assertion_response(sim, _assertion(sim, private_key, thumbprint(certificate)))
    assert entra_error(response) == (401, "invalid_client", 700027)
    assert "expired" in response.json()["error_description"]


def test_secrets_and_assertions_never_reach_the_request_log(tmp_path: Path) -> None:
    private_key, certificate = make_certificate()
    sim = Simulator(make_seed(key_credentials=[key_credential(certificate)]))
    live_log = tmp_path / "live.jsonl"
    sim.log_to(live_log)
    assertion = _assertion(sim, private_key, thumbprint(certificate))
    token = access_token(sim)
    request_token(sim, client_secret="wrong-but-still-secret")
    _assertion_response(sim, assertion)
    with graph_client(sim, token) as client:
        client.get("/users")
    sim.close()
    dumped = tmp_path / "log.jsonl"
    sim.request_log_jsonl(dumped)

    token_records = [r for r in sim.request_log if r.path.endswith("/oauth2/v2.0/token")]
    assert len(token_records) == 3
    assert {r.body.get("client_secret", r.body.get("client_assertion")) for r in token_records} == {
        "[redacted]"
    }
    for text in (
        dumped.read_text(),
        live_log.read_text(),
        json.dumps([r.to_json() for r in sim.request_log]),
    ):
        assert SECRET not in text
        assert "wrong-but-still-secret" not in text
        assert assertion not in text
        assert token not in text
    assert len(live_log.read_text().splitlines()) == len(sim.request_log)


def test_openid_configuration_and_discovery_answer_for_the_tenant_only() -> None:
    sim = Simulator(make_seed())
    with httpx.Client(transport=sim.transport(), base_url=sim.base_url) as client:
        config = client.get(f"/{TENANT_ID}/v2.0/.well-known/openid-configuration").json()
        unknown = client.get("/not-a-tenant/v2.0/.well-known/openid-configuration")
    assert config["token_endpoint"] == f"{sim.base_url}/{TENANT_ID}/oauth2/v2.0/token"
    assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"]
    assert unknown.status_code == 400 and unknown.json()["error_codes"] == [90002]
