"""Acceptance: certificate credentials (PEM with or without a thumbprint, PFX with a passphrase from
the environment) sign in to the simulator, which checks the signed client assertion; and the real
`smartsync simulator serve` process answers the real CLI over HTTPS."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_setup_support import (
    PROXY_VARIABLES,
    AppCertificate,
    app_seed,
    https_simulator,
    invoke,
    without_proxies,
    write_config,
)

from smartsync.errors import EXIT_AUTH, EXIT_INPUT

PASSPHRASE = "pfx-Passphrase-4-tests"


@pytest.fixture(autouse=True)
def _direct_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def app_cert() -> AppCertificate:
    return AppCertificate.make()


def certificate_only(certificate: dict[str, str]) -> dict[str, object]:
    return {"client_secret": None, "certificate": certificate}


@pytest.mark.parametrize("give_thumbprint", [True, False])
def test_pem_certificate_signs_in_and_is_recognised_as_in_use(
    tmp_path: Path, app_cert: AppCertificate, give_thumbprint: bool
) -> None:
    pem = app_cert.write_pem(tmp_path / "app.pem")
    certificate = {"path": str(pem)} | ({"thumbprint": app_cert.thumbprint} if give_thumbprint else {})
    seed = app_seed(password_credentials=[], key_credentials=[app_cert.key_credential(days_left=200)])
    with https_simulator(tmp_path, seed) as server:
        config = write_config(tmp_path, server.base_url, server.ca_cert, tenant=certificate_only(certificate))
        result = invoke(config, "check-credentials", "--json")
        tokens = [r for r in server.simulator.request_log if r.path.endswith("/oauth2/v2.0/token")]

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is True and document["warnings"] == []
    assert (
        document["credentials"][0]["kind"] == "certificate" and document["credentials"][0]["in_use"] is True
    )
    assert [t.status for t in tokens] == [200]


def test_pfx_with_passphrase_from_the_environment_signs_in(tmp_path: Path, app_cert: AppCertificate) -> None:
    pfx = app_cert.write_pfx(tmp_path / "app.pfx", PASSPHRASE)
    certificate = {"path": str(pfx), "passphrase": "${SMARTSYNC_CERT_PASSPHRASE}"}
    seed = app_seed(password_credentials=[], key_credentials=[app_cert.key_credential(days_left=20)])
    with https_simulator(tmp_path, seed) as server:
        config = write_config(tmp_path, server.base_url, server.ca_cert, tenant=certificate_only(certificate))
        good = invoke(config, "check-credentials", env={"SMARTSYNC_CERT_PASSPHRASE": PASSPHRASE})
        wrong = invoke(config, "check-credentials", env={"SMARTSYNC_CERT_PASSPHRASE": "not-it-at-all"})

    assert good.exit_code == 0, good.output
    # The certificate runs out in 20 days: the check passes and says so.
    assert "certificate 'smartsync certificate' expires on" in good.output and "(in 20 days)" in good.output
    assert "(in use)" in good.output
    assert wrong.exit_code == EXIT_INPUT
    assert "tenant.certificate.passphrase" in wrong.output and "PFX" in wrong.output
    assert PASSPHRASE not in good.output + wrong.output and "not-it-at-all" not in wrong.output


def test_a_certificate_not_registered_on_the_app_fails_with_700027(
    tmp_path: Path, app_cert: AppCertificate
) -> None:
    other = AppCertificate.make()
    pem = other.write_pem(tmp_path / "other.pem")
    seed = app_seed(key_credentials=[app_cert.key_credential()])
    with https_simulator(tmp_path, seed) as server:
        config = write_config(
            tmp_path, server.base_url, server.ca_cert, tenant=certificate_only({"path": str(pem)})
        )
        result = invoke(config, "check-credentials")

    assert result.exit_code == EXIT_AUTH
    assert "AADSTS700027" in result.output and "not registered" in result.output
    assert "Certificates & secrets" in result.output
    assert "PRIVATE KEY" not in result.output


def test_a_wrong_thumbprint_in_the_config_is_caught_by_the_simulator(
    tmp_path: Path, app_cert: AppCertificate
) -> None:
    # The assertion names the certificate by the configured thumbprint; Entra finds no such key.
    pem = app_cert.write_pem(tmp_path / "app.pem")
    certificate = {"path": str(pem), "thumbprint": "AB" * 20}
    with https_simulator(tmp_path, app_seed(key_credentials=[app_cert.key_credential()])) as server:
        config = write_config(tmp_path, server.base_url, server.ca_cert, tenant=certificate_only(certificate))
        result = invoke(config, "check-credentials")

    assert result.exit_code == EXIT_AUTH and "AADSTS700027" in result.output
    assert "tenant.certificate.thumbprint" in result.output


@pytest.mark.slow  # two processes and real TLS: about 2-3 s, the only way to test what an admin runs
def test_served_simulator_process_and_cli_process_end_to_end(
    tmp_path: Path, app_cert: AppCertificate
) -> None:
    seed_path = tmp_path / "seed.json"
    seed_path.write_text(json.dumps(app_seed(key_credentials=[app_cert.key_credential()])), encoding="utf-8")
    ready = tmp_path / "ready.json"
    env = without_proxies()
    server = subprocess.Popen(
        [sys.executable, "-m", "smartsync", "simulator", "serve", "--port", "0", "--state", str(seed_path),
         "--ready-file", str(ready), "--cert-dir", str(tmp_path / "ca")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), server.stderr.read() if server.stderr else "no ready file"
        info = json.loads(ready.read_text(encoding="utf-8"))
        pem = app_cert.write_pem(tmp_path / "app.pem")
        good = write_config(
            tmp_path,
            info["base_url"],
            Path(info["ca_cert"]),
            tenant=certificate_only({"path": str(pem)}),
            name="good.yaml",
        )
        bad = write_config(
            tmp_path,
            info["base_url"],
            Path(info["ca_cert"]),
            tenant={"tenant_id": "0badc0de-0000-4000-8000-000000000000"},
            name="bad.yaml",
        )
        command = [sys.executable, "-m", "smartsync", "--config"]
        passed = subprocess.run([*command, str(good), "check-credentials", "--json"],
                                capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
        failed = subprocess.run([*command, str(bad), "check-credentials"],
                                capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=20)

    assert passed.returncode == 0, passed.stderr
    assert json.loads(passed.stdout)["ok"] is True
    assert (
        failed.returncode == EXIT_AUTH
        and "AADSTS90002" in failed.stderr
        and "tenant.tenant_id" in failed.stderr
    )
    assert server.returncode == 0
