"""The simulated Microsoft Entra login endpoints, and the check of Graph's bearer tokens.

Served on the simulator's own origin, so msal can use it as an authority:
- `GET /{tenant}/v2.0/.well-known/openid-configuration` (and the v1 variant), `GET /common/discovery/instance`
  (msal's instance discovery), `GET /{tenant}/discovery/v2.0/keys`;
- `POST /{tenant}/oauth2/v2.0/token`: the client-credentials grant, with a client secret or a client
  assertion (a JWT signed with the private key of a certificate registered on the app, RS256 with an
  `x5t` header or PS256 with `x5t#S256`, as msal sends them).

Errors have the shape and AADSTS codes Entra returns, so the client's error handling meets the real
messages. Access tokens are HS256 JWTs signed with a per-simulator random key; their lifetime runs on
the simulated clock, while `expires_in` is given in real seconds because that is what the client waits.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from smartsync.simulator.clock import Clock
from smartsync.simulator.graph_errors import graph_error
from smartsync.simulator.http import Principal, SimRequest, SimResponse
from smartsync.simulator.tenant import TenantState

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_LIFETIME_SECONDS = 3599.0  # what Entra issues to app-only clients by default
# The client signs its assertion with its own wall clock, which the simulated clock may outrun.
ASSERTION_CLOCK_SKEW_SECONDS = 300.0
TOKEN_CLOCK_SKEW_SECONDS = 300.0
_VERIFIED_CACHE_SIZE = 1024
_NON_LOGIN_ROOTS = frozenset({"v1.0", "beta", "_simulator"})
_FRACTION = re.compile(r"(\.\d{6})\d+")


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_iso(text: str) -> datetime | None:
    """Graph's ISO timestamps (`2025-08-31T00:00:00Z`, up to 7 fractional digits), or None if unreadable."""
    try:
        parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", text.strip()).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def is_login_path(path: str) -> bool:
    first = next((part for part in path.split("/") if part), "")
    return bool(first) and first not in _NON_LOGIN_ROOTS


@dataclass(frozen=True)
class JwtParts:
    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes


def split_jwt(token: str) -> JwtParts | None:
    pieces = token.split(".")
    if len(pieces) != 3:
        return None
    try:
        header = json.loads(b64url_decode(pieces[0]))
        payload = json.loads(b64url_decode(pieces[1]))
        signature = b64url_decode(pieces[2])
    except (ValueError, binascii.Error):
        return None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return None
    return JwtParts(header, payload, f"{pieces[0]}.{pieces[1]}".encode("ascii"), signature)


class LoginError(Exception):
    """An Entra error answer: OAuth error name, AADSTS number, HTTP status and description."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(f"AADSTS{code}: {description}")
        self.status = status
        self.error = error
        self.code = code
        self.description = description


@dataclass(frozen=True)
class RegisteredCertificate:
    sha1: bytes
    sha256: bytes
    public_key: Any
    expires: datetime | None


def _load_certificate(text: str) -> x509.Certificate | None:
    try:
        if "BEGIN CERTIFICATE" in text:
            return x509.load_pem_x509_certificate(text.encode("ascii"))
        return x509.load_der_x509_certificate(base64.b64decode(text))  # Graph's keyCredential.key form
    except (ValueError, binascii.Error):
        return None


class LoginService:
    """Answers the login endpoints and verifies the access tokens it issued."""

    def __init__(self, state: TenantState, clock: Clock, base_url: str) -> None:
        self.state = state
        self.clock = clock
        self.base_url = base_url.rstrip("/")
        self.token_lifetime = TOKEN_LIFETIME_SECONDS
        self._signing_key = secrets.token_bytes(32)
        # Signature checks are cached per token: clients send the same token thousands of times.
        self._verified: dict[str, dict[str, Any]] = {}
        self._cert_cache: dict[str, RegisteredCertificate | None] = {}
        self._cert_lock = threading.Lock()

    # --- login endpoints -------------------------------------------------------------------------

    def handle(self, req: SimRequest) -> SimResponse:
        parts = [part for part in req.path.split("/") if part]
        tenant = parts[0] if parts else ""
        rest = "/".join(parts[1:])
        try:
            if req.method == "GET" and rest == "discovery/instance":
                return self._instance_discovery(req)
            if req.method == "GET" and rest in {
                "v2.0/.well-known/openid-configuration",
                ".well-known/openid-configuration",
            }:
                return self._openid_configuration(tenant, v2=rest.startswith("v2.0"))
            if req.method == "GET" and rest in {"discovery/v2.0/keys", "discovery/keys"}:
                self._check_tenant(tenant)
                return SimResponse.of_json(200, {"keys": []})
            if rest in {"oauth2/v2.0/token", "oauth2/token"}:
                if req.method != "POST":
                    raise LoginError(
                        400, "invalid_request", 900561, "The endpoint only accepts POST requests."
                    )
                return self._token(tenant, req)
        except LoginError as exc:
            return self._entra_error(exc)
        return SimResponse.of_json(
            404, {"error": "not_found", "error_description": f"No login endpoint at {req.method} {req.path}."}
        )

    def _entra_error(self, exc: LoginError) -> SimResponse:
        now = self.clock.now()
        trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        description = (
            f"AADSTS{exc.code}: {exc.description}\r\nTrace ID: {trace_id}\r\n"
            f"Correlation ID: {correlation_id}\r\nTimestamp: {stamp}"
        )
        return SimResponse.of_json(
            exc.status,
            {
                "error": exc.error,
                "error_description": description,
                "error_codes": [exc.code],
                "timestamp": stamp,
                "trace_id": trace_id,
                "correlation_id": correlation_id,
                "error_uri": f"{self.base_url}/error?code={exc.code}",
            },
        )

    def _check_tenant(self, tenant: str) -> None:
        if tenant.lower() != self.state.tenant_id.lower():
            raise LoginError(
                400,
                "invalid_request",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
                "signing into the correct cloud. Check with your subscription administrator, this may "
                "happen if there are no active subscriptions for the tenant.",
            )

    def _instance_discovery(self, req: SimRequest) -> SimResponse:
        # msal asks this (by default at login.microsoftonline.com) before trusting an unknown host, and
        # again for the host's aliases; both questions get this simulator as the one authority.
        authorize = req.query.get("authorization_endpoint", "")
        match = re.fullmatch(r"(https://[^/]+/[^/]+)/oauth2/(?:v2\.0/)?authorize", authorize)
        if match is None:
            return SimResponse.of_json(
                400,
                {
                    "error": "invalid_instance",
                    "error_description": "authorization_endpoint is missing or invalid.",
                },
            )
        authority = match.group(1)
        own_host = self.base_url.split("://", 1)[-1]
        asked_host = authority.split("://", 1)[-1].split("/", 1)[0]
        return SimResponse.of_json(
            200,
            {
                "tenant_discovery_endpoint": f"{authority}/v2.0/.well-known/openid-configuration",
                "api-version": "1.1",
                "metadata": [
                    {
                        "preferred_network": own_host,
                        "preferred_cache": own_host,
                        "aliases": sorted({own_host, asked_host}),
                    }
                ],
            },
        )

    def _openid_configuration(self, tenant: str, *, v2: bool) -> SimResponse:
        self._check_tenant(tenant)
        tid = self.state.tenant_id
        root = f"{self.base_url}/{tid}"
        version = "/v2.0" if v2 else ""
        host = self.base_url.split("://", 1)[-1]
        return SimResponse.of_json(
            200,
            {
                "issuer": f"{root}/v2.0" if v2 else f"{root}/",
                "authorization_endpoint": f"{root}/oauth2{version}/authorize",
                "token_endpoint": f"{root}/oauth2{version}/token",
                "device_authorization_endpoint": f"{root}/oauth2{version}/devicecode",
                "end_session_endpoint": f"{root}/oauth2{version}/logout",
                "jwks_uri": f"{root}/discovery{version}/keys",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "response_modes_supported": ["query", "fragment", "form_post"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "roles"],
                "request_uri_parameter_supported": False,
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "tenant_region_scope": "EU",
                "cloud_instance_name": host,
                "cloud_graph_host_name": host,
                "msgraph_host": host,
            },
        )

    # --- token endpoint ---------------------------------------------------------------------------

    def _token(self, tenant: str, req: SimRequest) -> SimResponse:
        self._check_tenant(tenant)
        form = dict(parse_qsl(req.body.decode("utf-8", "replace"), keep_blank_values=True))
        grant_type = form.get("grant_type", "")
        if not grant_type:
            raise LoginError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'grant_type'.",
            )
        if grant_type != "client_credentials":
            raise LoginError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant_type}'.",
            )
        assertion = form.get("client_assertion", "")
        client_id = form.get("client_id", "")
        if not client_id and assertion:
            parsed = split_jwt(assertion)
            client_id = str(parsed.payload.get("iss", "")) if parsed else ""
        if not client_id:
            raise LoginError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            )
        with self.state.lock:
            app = self.state.app
            known = client_id.lower() == app.client_id.lower()
            app_secrets = list(app.client_secrets)
            password_credentials = [dict(pc) for pc in app.password_credentials]
            key_credentials = [dict(kc) for kc in app.key_credentials]
            roles = sorted(app.roles)
            registered_id = app.client_id
        if not known:
            raise LoginError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.state.tenant_id}'. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant. You may have sent "
                "your authentication request to the wrong tenant.",
            )
        resource = self._resource_from_scope(form.get("scope", ""))
        secret = form.get("client_secret", "")
        if secret:
            self._check_secret(secret, app_secrets, password_credentials, registered_id)
        elif assertion:
            self._check_assertion(form, assertion, key_credentials, registered_id, tenant)
        else:
            raise LoginError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
            )
        token = self.issue_access_token(registered_id, roles, resource)
        expires_in = max(1, int(self.clock.to_real(self.token_lifetime)))
        return SimResponse.of_json(
            200,
            {
                "token_type": "Bearer",
                "expires_in": expires_in,
                "ext_expires_in": expires_in,
                "access_token": token,
            },
            {"cache-control": "no-store, no-cache", "pragma": "no-cache"},
        )

    def _resource_from_scope(self, scope: str) -> str:
        if not scope:
            raise LoginError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            )
        scopes = scope.split()
        graph_resources = {GRAPH_RESOURCE, self.base_url, GRAPH_APP_ID}
        if len(scopes) == 1 and scopes[0].endswith("/.default"):
            resource = scopes[0][: -len("/.default")].rstrip("/")
            if resource in graph_resources:
                return resource
            raise LoginError(
                400,
                "invalid_scope",
                70011,
                "The provided value for the input parameter 'scope' is not valid. "
                f"The scope {scope} is not valid.",
            )
        raise LoginError(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {scope} is not valid. Client credential flows must have a scope "
            "value with /.default suffixed to the resource identifier (application ID URI).",
        )

    def _check_secret(
        self, secret: str, app_secrets: list[str], password_credentials: list[dict[str, Any]], client_id: str
    ) -> None:
        # Compare every registered secret in constant time, so a near-miss cannot be timed.
        index = -1
        for position, registered in enumerate(app_secrets):
            if hmac.compare_digest(secret.encode("utf-8"), registered.encode("utf-8")):
                index = position
        if index < 0:
            raise LoginError(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                f"secret value, not the client secret ID, for a secret added to app '{client_id}'.",
            )
        credential = self._credential_for_secret(secret, index, password_credentials)
        end = parse_iso(str(credential.get("endDateTime", ""))) if credential else None
        if end is not None and end.timestamp() <= self.clock.now():
            raise LoginError(
                401,
                "invalid_client",
                7000222,
                f"The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal "
                "to create new keys for your app: https://aka.ms/NewClientSecret, or consider using "
                "certificate credentials for added security: https://aka.ms/certCreds.",
            )

    @staticmethod
    def _credential_for_secret(
        secret: str, index: int, password_credentials: list[dict[str, Any]]
    ) -> dict[str, Any] | None:
        """The passwordCredential a secret belongs to: by its hint (first 3 characters), else by position."""
        by_hint = [pc for pc in password_credentials if pc.get("hint") and pc.get("hint") == secret[:3]]
        if len(by_hint) == 1:
            return by_hint[0]
        return password_credentials[index] if index < len(password_credentials) else None

    def _registered_certificate(self, credential: Mapping[str, Any]) -> RegisteredCertificate | None:
        key_text = str(credential.get("key", ""))
        with self._cert_lock:
            if key_text in self._cert_cache:
                return self._cert_cache[key_text]
        certificate = _load_certificate(key_text) if key_text else None
        registered = None
        if certificate is not None:
            registered = RegisteredCertificate(
                sha1=certificate.fingerprint(hashes.SHA1()),  # x5t is defined as a SHA-1 thumbprint
                sha256=certificate.fingerprint(hashes.SHA256()),
                public_key=certificate.public_key(),
                expires=parse_iso(str(credential.get("endDateTime", "")))
                if credential.get("endDateTime")
                else None,
            )
        with self._cert_lock:
            self._cert_cache[key_text] = registered
        return registered

    def _check_assertion(
        self,
        form: dict[str, str],
        assertion: str,
        key_credentials: list[dict[str, Any]],
        client_id: str,
        tenant: str,
    ) -> None:
        if form.get("client_assertion_type", "") != JWT_BEARER:
            raise LoginError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: "
                f"'client_assertion_type' = '{JWT_BEARER}'.",
            )
        parsed = split_jwt(assertion)
        if parsed is None:
            raise LoginError(400, "invalid_request", 50027, "JWT token is invalid or malformed.")
        thumbprint_sha1 = parsed.header.get("x5t")
        thumbprint_sha256 = parsed.header.get("x5t#S256")
        try:
            wanted_sha1 = b64url_decode(thumbprint_sha1) if isinstance(thumbprint_sha1, str) else None
            wanted_sha256 = b64url_decode(thumbprint_sha256) if isinstance(thumbprint_sha256, str) else None
        except (ValueError, binascii.Error):
            wanted_sha1 = wanted_sha256 = None
        shown = (wanted_sha1 or wanted_sha256 or b"").hex().upper()
        match = None
        for credential in key_credentials:
            registered = self._registered_certificate(credential)
            if registered and (registered.sha1 == wanted_sha1 or registered.sha256 == wanted_sha256):
                match = registered
                break
        if match is None:
            raise LoginError(
                401,
                "invalid_client",
                700027,
                "The certificate with identifier used to sign the client assertion is not registered on "
                "application. [Reason - The key was not found., "
                f"Thumbprint of key used by client: '{shown}', Please visit the Azure Portal, Graph Explorer "
                f"or directly use MS Graph to see configured keys for app Id '{client_id}'.]",
            )
        if match.expires is not None and match.expires.timestamp() <= self.clock.now():
            raise LoginError(
                401,
                "invalid_client",
                700027,
                f"Client assertion contains an invalid signature. [Reason - The key used is expired., "
                f"Thumbprint of key used by client: '{shown}']",
            )
        if not self._signature_valid(parsed, match.public_key):
            raise LoginError(
                401,
                "invalid_client",
                700027,
                "Client assertion contains an invalid signature. [Reason - The provided signature value did "
                f"not match the expected signature value., Thumbprint of key used by client: '{shown}']",
            )
        claims = parsed.payload
        if str(claims.get("iss", "")).lower() != client_id.lower() or str(claims.get("sub", "")).lower() != (
            client_id.lower()
        ):
            raise LoginError(
                401,
                "invalid_client",
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            )
        tid = self.state.tenant_id
        audiences = {
            f"{self.base_url}/{tid}/oauth2/v2.0/token",
            f"{self.base_url}/{tenant}/oauth2/v2.0/token",
            f"{self.base_url}/{tid}/oauth2/token",
            f"{self.base_url}/{tid}/v2.0",
        }
        if claims.get("aud") not in audiences:
            raise LoginError(
                401,
                "invalid_client",
                50013,
                f"Assertion audience claim does not match the required value. The audience in the assertion "
                f"was '{claims.get('aud')}' and the expected audience is "
                f"'{self.base_url}/{tid}/oauth2/v2.0/token'.",
            )
        now = time.time()
        expires = claims.get("exp")
        not_before = claims.get("nbf", claims.get("iat", 0))
        if (
            not isinstance(expires, int | float)
            or not isinstance(not_before, int | float)
            or expires + ASSERTION_CLOCK_SKEW_SECONDS < now
            or not_before - ASSERTION_CLOCK_SKEW_SECONDS > now
        ):
            raise LoginError(
                401,
                "invalid_client",
                700024,
                f"Client assertion is not within its valid time range. Current time: "
                f"{datetime.fromtimestamp(now, UTC).isoformat()}, expiry time of assertion: {expires}.",
            )

    @staticmethod
    def _signature_valid(parsed: JwtParts, public_key: Any) -> bool:
        if not isinstance(public_key, rsa.RSAPublicKey):
            return False
        algorithm = parsed.header.get("alg")
        try:
            if algorithm == "RS256":
                public_key.verify(parsed.signature, parsed.signing_input, padding.PKCS1v15(), hashes.SHA256())
            elif algorithm == "PS256":
                pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
                public_key.verify(parsed.signature, parsed.signing_input, pss, hashes.SHA256())
            else:
                return False
        except InvalidSignature:
            return False
        return True

    # --- access tokens ----------------------------------------------------------------------------

    def issue_access_token(self, client_id: str, roles: list[str], resource: str = GRAPH_RESOURCE) -> str:
        now = self.clock.now()
        tid = self.state.tenant_id
        claims: dict[str, Any] = {
            "aud": resource,
            "iss": f"{self.base_url}/{tid}/",
            "iat": int(now),
            "nbf": int(now),
            "exp": int(now + self.token_lifetime),
            "tid": tid,
            "appid": client_id,
            "appidacr": "1",
            "idtyp": "app",
            "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"serviceprincipal:{tid}:{client_id}")),
            "ver": "1.0",
            "uti": b64url_encode(secrets.token_bytes(12)),
        }
        if roles:  # Entra leaves the claim out when nothing is granted
            claims["roles"] = roles
        header = b64url_encode(json.dumps({"typ": "JWT", "alg": "HS256"}).encode("utf-8"))
        payload = b64url_encode(json.dumps(claims, separators=(",", ":")).encode("utf-8"))
        signing_input = f"{header}.{payload}".encode("ascii")
        signature = hmac.new(self._signing_key, signing_input, hashlib.sha256).digest()
        return f"{header}.{payload}.{b64url_encode(signature)}"

    def authenticate(self, req: SimRequest) -> Principal | SimResponse:
        """The caller of a Graph request, or the 401 Graph gives for a missing or invalid token."""
        authorization = req.headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if not authorization:
            return self._unauthorized("Access token is empty.", req)
        if scheme.lower() != "bearer" or not token.strip():
            return self._unauthorized("Access token validation failure. Invalid authorization scheme.", req)
        token = token.strip()
        claims = self._verified.get(token)
        if claims is None:
            parsed = split_jwt(token)
            if parsed is None:
                return self._unauthorized("IDX14100: JWT is not well formed, there are no dots (.).", req)
            expected = hmac.new(self._signing_key, parsed.signing_input, hashlib.sha256).digest()
            if parsed.header.get("alg") != "HS256" or not hmac.compare_digest(expected, parsed.signature):
                return self._unauthorized("Access token validation failure. Invalid signature.", req)
            claims = parsed.payload
            if len(self._verified) >= _VERIFIED_CACHE_SIZE:
                self._verified.clear()
            self._verified[token] = claims
        if claims.get("aud") not in {GRAPH_RESOURCE, self.base_url, GRAPH_APP_ID}:
            return self._unauthorized("Access token validation failure. Invalid audience.", req)
        if str(claims.get("tid", "")).lower() != self.state.tenant_id.lower():
            return self._unauthorized("Access token validation failure. Invalid issuer.", req)
        now = self.clock.now()
        if float(claims.get("exp", 0)) + TOKEN_CLOCK_SKEW_SECONDS <= now:
            return self._unauthorized("Lifetime validation failed, the token is expired.", req)
        if float(claims.get("nbf", 0)) - TOKEN_CLOCK_SKEW_SECONDS > now:
            return self._unauthorized("Lifetime validation failed, the token is not yet valid.", req)
        roles = claims.get("roles", [])
        return Principal(app_id=str(claims.get("appid", "")), roles=frozenset(str(role) for role in roles))

    def _unauthorized(self, message: str, req: SimRequest) -> SimResponse:
        return graph_error(
            401,
            "InvalidAuthenticationToken",
            message,
            self.clock.now(),
            headers={
                "www-authenticate": 'Bearer realm="", '
                f'authorization_uri="{self.base_url}/common/oauth2/authorize", client_id="{GRAPH_APP_ID}"'
            },
            client_request_id=req.headers.get("client-request-id", ""),
        )
