"""App-only access tokens from Entra ID through msal, with errors a sysadmin can act on.

msal does the OAuth work (OIDC discovery, client credentials with a secret or a certificate,
caching and refreshing); it talks HTTP through `MsalHttpAdapter`, a small adapter over httpx, so
that proxies, `tenant.ca_bundle` and the simulator's in-process transport apply to sign-in as they
do to Graph. Entra's AADSTS error codes are turned into messages that say which config key to fix.
No message ever contains the secret, the signed assertion or a token.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import msal

from smartsync import __version__
from smartsync.errors import ConfigError
from smartsync.graph.errors import TokenError, redact, strip_html
from smartsync.httpio import is_tls_failure, tls_verify

if TYPE_CHECKING:
    from smartsync.config import Certificate, TenantConfig

# Refresh this long before expiry so that a token never runs out in the middle of a batch; short-lived
# tokens (a simulated tenant on a fast clock) refresh after nine tenths of their life instead.
REFRESH_MARGIN_SECONDS = 300.0
REFRESH_MARGIN_FRACTION = 0.1
_AADSTS = re.compile(r"AADSTS(\d+)")
# A secret's ID is a GUID; its Value (what sign-in needs) is a 40-character random string.
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
PFX_SUFFIXES = (".pfx", ".p12")
KEPT_ERRORS = 5
_MICROSOFT_LOGIN_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoft.com",
        "login.windows.net",
        "login.microsoftonline.us",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
        "login-us.microsoftonline.com",
        "login.usgovcloudapi.net",
    }
)


@dataclass(frozen=True)
class ErrorResponse:
    """The last error answer the sign-in endpoint gave (status and text), kept to explain failures."""

    url: str
    status: int
    text: str


class MsalHttpAdapter:
    """The `http_client` msal expects (`get`, `post`, `close`), over an `httpx.Client`."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._errors: list[ErrorResponse] = []

    @property
    def errors(self) -> list[ErrorResponse]:
        """The error answers seen so far (the last few), oldest first."""
        with self._lock:
            return list(self._errors)

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        return self._remember(
            self._client.get(url, params=_params(params), headers=headers, timeout=_timeout(kwargs))
        )

    def post(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        timeout = _timeout(kwargs)
        if isinstance(data, Mapping):
            # msal passes the signed client assertion as bytes; httpx would send their repr.
            form = {k: v.decode("ascii") if isinstance(v, bytes) else v for k, v in data.items()}
            response = self._client.post(
                url, params=_params(params), data=form, headers=headers, timeout=timeout
            )
        elif data is not None:
            content = data.encode("utf-8") if isinstance(data, str) else data
            response = self._client.post(
                url, params=_params(params), content=content, headers=headers, timeout=timeout
            )
        elif "json" in kwargs:
            response = self._client.post(
                url, params=_params(params), json=kwargs["json"], headers=headers, timeout=timeout
            )
        else:
            response = self._client.post(url, params=_params(params), headers=headers, timeout=timeout)
        return self._remember(response)

    def close(self) -> None:
        self._client.close()

    def _remember(self, response: httpx.Response) -> httpx.Response:
        # Read the body now: msal reads .text later, possibly after the stream would be closed.
        response.read()
        if response.status_code >= 400:
            with self._lock:
                self._errors = [
                    *self._errors[-(KEPT_ERRORS - 1) :],
                    ErrorResponse(str(response.request.url), response.status_code, response.text),
                ]
        return response


def _params(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return dict(params) if params else None


def _timeout(kwargs: Mapping[str, Any]) -> Any:
    timeout = kwargs.get("timeout")
    return timeout if isinstance(timeout, int | float) else httpx.USE_CLIENT_DEFAULT


def decode_jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, decoded without checking the signature (Graph checks it; we only read it)."""
    parts = token.split(".")
    if len(parts) < 2:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def certificate_credential(pem: bytes, thumbprint: str | None, passphrase: str | None) -> dict[str, str]:
    """msal's certificate credential from a PEM holding the private key and the certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    text = pem.decode("ascii", errors="replace")
    if "PRIVATE KEY-----" not in text:
        raise ConfigError(
            "tenant.certificate.path: the PEM file holds no private key. Put the private key and the "
            "certificate in one PEM file (cat key.pem cert.pem > app.pem)."
        )
    if not thumbprint:
        start = text.find("-----BEGIN CERTIFICATE-----")
        if start < 0:
            raise ConfigError(
                "tenant.certificate: the PEM file holds no certificate, so its thumbprint cannot be worked "
                "out. Add the certificate to the PEM file, or give tenant.certificate.thumbprint."
            )
        try:
            cert = x509.load_pem_x509_certificate(text[start:].encode("ascii"))
        except ValueError as exc:
            raise ConfigError(
                f"tenant.certificate.path: the certificate in the PEM file is unreadable ({exc})."
            ) from None
        thumbprint = cert.fingerprint(hashes.SHA1()).hex().upper()
    credential = {"private_key": text, "thumbprint": thumbprint.replace(":", "").replace(" ", "").upper()}
    if passphrase:
        credential["passphrase"] = passphrase
    return credential


def pfx_credential(data: bytes, thumbprint: str | None, passphrase: str | None) -> dict[str, str]:
    """msal's certificate credential from a PFX (PKCS#12) file's bytes, opened with `passphrase`.

    The key is handed to msal as PEM in memory, so any msal version can use it and a wrong passphrase
    is reported here, naming the config key, rather than deep inside msal.
    """
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    try:
        key, cert, _chain = pkcs12.load_key_and_certificates(
            data, passphrase.encode("utf-8") if passphrase else None
        )
    except (ValueError, TypeError):
        hint = (
            "the passphrase in tenant.certificate.passphrase does not open it"
            if passphrase
            else "it needs a passphrase: set tenant.certificate.passphrase, e.g. ${SMARTSYNC_CERT_PASSPHRASE}"
        )
        raise ConfigError(
            f"tenant.certificate.path: cannot open the PFX file ({hint}), or it is not a PFX/PKCS#12 file."
        ) from None
    if key is None or cert is None:
        raise ConfigError(
            "tenant.certificate.path: the PFX file must hold both the private key and its certificate; "
            "export it again with the private key included."
        )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    chosen = thumbprint or cert.fingerprint(hashes.SHA1()).hex()
    return {"private_key": pem, "thumbprint": chosen.replace(":", "").replace(" ", "").upper()}


def certificate_thumbprint(certificate: Certificate) -> str | None:
    """The SHA-1 thumbprint (hex, upper case) of the configured certificate, or None if it cannot be read.

    Used to tell which of the app's registered certificates the config signs in with; it never fails,
    because sign-in reports an unreadable certificate file on its own.
    """
    if certificate.thumbprint:
        return certificate.thumbprint.replace(":", "").replace(" ", "").upper()
    passphrase = certificate.passphrase.get_secret_value() if certificate.passphrase else None
    try:
        data = certificate.path.read_bytes()
        if certificate.path.suffix.lower() in PFX_SUFFIXES:
            return pfx_credential(data, None, passphrase)["thumbprint"]
        return certificate_credential(data, None, passphrase)["thumbprint"]
    except (OSError, ConfigError):
        return None


def _proxy_for(url: str) -> str | None:
    """The proxy httpx uses for `url` from the environment (HTTPS_PROXY, ALL_PROXY, NO_PROXY), without
    any user name or password it carries."""
    proxies = urllib.request.getproxies_environment()
    host = urlsplit(url).hostname or ""
    bypass = [entry.strip().lower() for entry in proxies.get("no", "").split(",") if entry.strip()]
    if "*" in bypass or any(host == e.lstrip(".") or host.endswith("." + e.lstrip(".")) for e in bypass):
        return None
    proxy = proxies.get("https") or proxies.get("all")
    if not proxy:
        return None
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return f"{parts.scheme}://{netloc}"


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _aadsts_code(*texts: str | None) -> str | None:
    for text in texts:
        if text:
            found = _AADSTS.search(text)
            if found:
                return found.group(1)
    return None


class TokenProvider:
    """Gets and caches the app-only token for one tenant; thread-safe."""

    def __init__(self, tenant: TenantConfig, *, transport: httpx.BaseTransport | None = None) -> None:
        self.tenant = tenant
        self.scope = f"{tenant.graph_url}/.default"
        self.authority = f"{tenant.login_url}/{tenant.tenant_id}"
        self._transport = transport
        self._lock = threading.Lock()
        self._app: Any = None
        self._adapter: MsalHttpAdapter | None = None
        self._token: str | None = None
        self._refresh_at = 0.0
        self._secrets: tuple[str, ...] = ()

    def token(self) -> str:
        """A valid access token for Graph (cached; fetched again shortly before it expires)."""
        with self._lock:
            if self._token is not None and time.monotonic() < self._refresh_at:
                return self._token
            result = self._acquire()
            token = result.get("access_token")
            if not isinstance(token, str) or not token:
                raise self._error_from_result(result)
            expires_in = result.get("expires_in")
            lifetime = float(expires_in) if isinstance(expires_in, int | float | str) else 3600.0
            self._token = token
            self._refresh_at = (
                time.monotonic() + lifetime - min(REFRESH_MARGIN_SECONDS, lifetime * REFRESH_MARGIN_FRACTION)
            )
            return token

    def claims(self) -> dict[str, Any]:
        """The current token's payload (roles, tid, appid, exp), decoded without verification."""
        return decode_jwt_claims(self.token())

    def close(self) -> None:
        with self._lock:
            if self._adapter is not None:
                self._adapter.close()

    # -- internals ----------------------------------------------------------------------------------

    def _acquire(self) -> dict[str, Any]:
        try:
            app = self._application()
            result = app.acquire_token_for_client(scopes=[self.scope])
        except httpx.TransportError as exc:
            raise self._network_error(exc) from None
        except TokenError:
            raise
        except (ValueError, msal.exceptions.MsalServiceError) as exc:
            raise self._failure(exc) from None
        if not isinstance(result, dict):
            raise TokenError(f"Sign-in at {self.authority} returned no answer smartsync understands.")
        return result

    def _application(self) -> Any:
        if self._app is not None:
            return self._app
        credential = self._credential()
        if self._adapter is not None:
            self._adapter.close()  # left from an attempt whose discovery failed
        client = httpx.Client(
            transport=self._transport,
            verify=tls_verify(self.tenant.ca_bundle),
            trust_env=True,
            timeout=httpx.Timeout(30.0),
            headers={"User-Agent": f"smartsync/{__version__}"},
        )
        self._adapter = MsalHttpAdapter(client)
        host = (urlsplit(self.tenant.login_url).hostname or "").lower()
        options: dict[str, Any] = {}
        if host not in _MICROSOFT_LOGIN_HOSTS:
            options["instance_discovery"] = False
        self._app = msal.ConfidentialClientApplication(
            self.tenant.client_id,
            client_credential=credential,
            authority=self.authority,
            http_client=self._adapter,
            token_cache=msal.TokenCache(),
            **options,
        )
        return self._app

    def _credential(self) -> Any:
        secret = self.tenant.secret()
        if secret:
            self._secrets = (secret,)
            return secret
        certificate = self.tenant.certificate
        if certificate is None:
            raise TokenError(_MESSAGES["7000218"].format(**self._facts()), code="AADSTS7000218")
        passphrase = certificate.passphrase.get_secret_value() if certificate.passphrase else None
        self._secrets = (passphrase,) if passphrase else ()
        path = certificate.path
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"tenant.certificate.path: cannot read {path} ({exc.strerror}).") from None
        if path.suffix.lower() in PFX_SUFFIXES:
            return pfx_credential(data, certificate.thumbprint, passphrase)
        return certificate_credential(data, certificate.thumbprint, passphrase)

    def _facts(self) -> dict[str, str]:
        return {
            "client_id": self.tenant.client_id,
            "tenant_id": self.tenant.tenant_id,
            "scope": self.scope,
            "login": self.tenant.login_url,
        }

    def _clean(self, text: str) -> str:
        return redact(text, self._secrets)

    def _error_from_result(self, result: Mapping[str, Any]) -> TokenError:
        description = str(result.get("error_description") or "")
        codes = result.get("error_codes")
        code = str(codes[0]) if isinstance(codes, list) and codes else _aadsts_code(description)
        return self._token_error(code, str(result.get("error") or "error"), description)

    def _token_error(self, code: str | None, error: str, description: str) -> TokenError:
        detail = self._clean(description.splitlines()[0] if description else error)
        secret = self.tenant.secret() if self.tenant.certificate is None else None
        if code == "7000215" and secret and _GUID.match(secret.strip()):
            # Entra cannot tell an ID from a wrong value; the shape of what was configured can.
            code = "7000215-id"
        template = _MESSAGES.get(code or "")
        if template is not None:
            message = template.format(**self._facts())
        else:
            message = (
                f"Sign-in for app {self.tenant.client_id} in tenant {self.tenant.tenant_id} failed "
                f"({error}). "
                "Check tenant.tenant_id, tenant.client_id and the credential in the config"
            )
        text = f"{message} Entra said: {detail}" if detail else message
        return TokenError(self._clean(text), code=f"AADSTS{code.split('-')[0]}" if code else None)

    def _failure(self, exc: Exception) -> TokenError:
        """msal gave up with an exception: explain it from the last error answer we saw."""
        seen = self._adapter.errors if self._adapter is not None else []
        # msal may make further calls after the one that failed; the answer that names an AADSTS code wins.
        last = next((e for e in reversed(seen) if _AADSTS.search(e.text)), seen[0] if seen else None)
        code = _aadsts_code(last.text if last else None, str(exc))
        answer = _json_object(last.text) if last is not None else None
        description = str(answer.get("error_description") or "") if answer else ""
        if code is not None:
            return self._token_error(code, "sign-in failed", description)
        if last is not None and answer and "error" in answer:
            return TokenError(
                self._clean(
                    f"Entra ID answered HTTP {last.status} ({answer['error']}) at {last.url.split('?')[0]}: "
                    f"{description.splitlines()[0] if description else 'no description'}. If this is a "
                    "server error, try again later; otherwise check the tenant settings in the config."
                )
            )
        if last is not None:
            excerpt = strip_html(self._clean(last.text))
            return TokenError(
                self._clean(
                    f"The sign-in endpoint {last.url.split('?')[0]} answered HTTP {last.status} with a "
                    f"response that is not from Entra ID ({excerpt!r}). Check tenant.authority_host / "
                    "tenant.cloud, and any proxy between this machine and the internet."
                )
            )
        return TokenError(
            self._clean(
                f"Sign-in at {self.authority} failed: {exc}. Check tenant.tenant_id, tenant.cloud and "
                "tenant.authority_host."
            )
        )

    def _network_error(self, exc: httpx.TransportError) -> TokenError:
        host = urlsplit(self.tenant.login_url).netloc
        reason = self._clean(str(exc) or type(exc).__name__)
        proxy = _proxy_for(self.tenant.login_url)
        if is_tls_failure(exc):
            via = f" (through the proxy {proxy})" if proxy else ""
            return TokenError(
                f"The TLS certificate presented for {host}{via} is not trusted ({reason}). If a proxy "
                "inspects HTTPS, set tenant.ca_bundle to its CA certificate (PEM).",
                code="TLS",
            )
        if isinstance(exc, httpx.ProxyError) and proxy:
            return TokenError(
                f"The proxy {proxy} (from the HTTPS_PROXY environment variable) refused to connect to {host} "
                f"({reason}). Ask for {host} to be allowed through it, check that the proxy needs no login, "
                "or list the host in NO_PROXY if it must be reached directly.",
                code="PROXY",
            )
        if proxy:
            return TokenError(
                f"Cannot reach the proxy {proxy} (from the HTTPS_PROXY environment variable) on the way to "
                f"{host} ({type(exc).__name__}: {reason}). Check HTTPS_PROXY and NO_PROXY in the environment "
                "smartsync runs in (cron and systemd do not read your shell's profile).",
                code="PROXY",
            )
        return TokenError(
            f"Cannot reach the sign-in endpoint {host} ({type(exc).__name__}: {reason}). Check the network, "
            "the HTTPS_PROXY environment variable, and, behind a TLS-inspecting proxy, tenant.ca_bundle."
        )


_SECRET_PAGE = "Entra admin centre > App registrations > {client_id} > Certificates & secrets"
_MESSAGES: dict[str, str] = {
    "7000215": (
        "The client secret was rejected (AADSTS7000215): it is not a current secret of app {client_id} "
        "(mistyped, cut short, from another app, deleted, or the secret's ID instead of its Value). In "
        f"{_SECRET_PAGE}, create a new client secret, copy its Value (shown only once) into "
        "tenant.client_secret or tenant.client_secret_file, and run `smartsync check-credentials`."
    ),
    "7000215-id": (
        "The client secret was rejected (AADSTS7000215): tenant.client_secret holds a secret ID (a GUID), "
        f"not the secret's Value. In {_SECRET_PAGE} the Value column is shown only right after the secret "
        "is created: create a new client secret, copy its Value (not the Secret ID) into "
        "tenant.client_secret or tenant.client_secret_file, and run `smartsync check-credentials`."
    ),
    "7000222": (
        "The client secret has expired (AADSTS7000222). In "
        f"{_SECRET_PAGE}, create a new client secret and put its Value into tenant.client_secret or "
        "tenant.client_secret_file."
    ),
    "700016": (
        "Application {client_id} was not found in tenant {tenant_id} (AADSTS700016). Check tenant.client_id "
        "(the Application (client) ID on the app's Overview page) and tenant.tenant_id, and that an "
        "administrator of this tenant consented to the app."
    ),
    "90002": (
        "Tenant {tenant_id} was not found at {login} (AADSTS90002). Check tenant.tenant_id (the Directory "
        "(tenant) ID on the app's Overview page) and tenant.cloud."
    ),
    "90023": (
        "The sign-in request for tenant {tenant_id} was refused as invalid (AADSTS90023). Check "
        "tenant.tenant_id, tenant.cloud and tenant.authority_host."
    ),
    "700027": (
        "The certificate is not registered for app {client_id} (AADSTS700027). Upload the certificate's "
        f"public part in {_SECRET_PAGE}, or correct tenant.certificate.thumbprint."
    ),
    "1002012": (
        "The scope {scope} was refused (AADSTS1002012). Check tenant.cloud and tenant.graph_endpoint: the "
        "Graph endpoint must belong to the same cloud as the sign-in endpoint {login}."
    ),
    "70011": (
        "The scope {scope} was refused (AADSTS70011). Check tenant.cloud and tenant.graph_endpoint: the "
        "Graph endpoint must belong to the same cloud as the sign-in endpoint {login}."
    ),
    "700024": (
        "The signed client assertion was outside its valid time range (AADSTS700024): this server's clock "
        "is wrong. Turn on time synchronisation (timedatectl set-ntp true) and try again."
    ),
    "7000218": (
        "No client secret or certificate was sent for app {client_id} (AADSTS7000218). Set one of "
        "tenant.client_secret, tenant.client_secret_file or tenant.certificate in the config."
    ),
}
