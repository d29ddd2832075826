"""Secrets: the client secret, the certificate passphrase and access tokens never show up anywhere.

Every output a person or a log collector could see is searched: stdout and stderr (at `-v`, in
JSON), the journal, exception text, and the simulated tenant's request log, on the happy path and
on failure paths (wrong secret, Graph answering 503 to everything, a safety refusal, a wrong
passphrase). Tokens are caught on the wire as the tenant issues them, so the search uses the real
values, plus any JWT-shaped string at all.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import shutil
from pathlib import Path

import httpx
import pytest
import yaml
from certs import self_signed
from click.testing import Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from test_reliability_badinput import CliTenant, cli_tenant, config_data, older
from test_reliability_support import mini_roster

from smartsync.demo import DEMO_SECRET
from smartsync.roster.sample import write_export
from smartsync.simulator import FaultSpec
from smartsync.simulator.faults import FaultInjector

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.")
WRONG_SECRET = "wrong-secret-Zq8v1Lw0pX"
PASSPHRASE = "correct horse battery staple 42"


class TokenTap(httpx.BaseTransport):
    """Remembers every bearer token sent to Graph and every access token the login endpoint issued."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.tokens: set[str] = set()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            self.tokens.add(auth[7:])
        response = self.inner.handle_request(request)
        if request.url.path.endswith("/oauth2/v2.0/token"):
            response.read()
            token = (response.json() or {}).get("access_token")
            if token:
                self.tokens.add(token)
        return response


def everything_visible(t: CliTenant, results: list[Result]) -> str:
    parts = []
    for result in results:
        parts.append(result.output)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            parts.append(repr(result.exception) + str(result.exception))
    journal = t.folder / "journal" / "changes.jsonl"
    if journal.exists():
        parts.append(journal.read_text(encoding="utf-8"))
    parts.extend(json.dumps(dataclasses.asdict(r)) for r in t.sim.request_log)
    return "\n".join(parts)


def assert_no_secrets(text: str, tokens: set[str], *secrets: str) -> None:
    assert tokens, "no token was seen, so the search proves nothing"
    for secret in (*secrets, *tokens):
        assert secret not in text
    assert not JWT.search(text), JWT.search(text)


def test_client_secret_and_tokens_stay_out_of_every_output_on_good_and_bad_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    roster = mini_roster()
    taps: list[TokenTap] = []
    with cli_tenant(tmp_path, monkeypatch, roster, synced=older(roster)) as (t, wraps):
        wraps.append(lambda inner: taps.append(TokenTap(inner)) or taps[-1])
        results = [
            t.run("-v", "run"),
            t.run("-v", "run", "--json"),
            t.run("-v", "log"),
            t.run("plan", "--json"),
        ]
        assert [r.exit_code for r in results] == [0, 0, 0, 0], results[0].output
        results.append(t.run("-v", "check-credentials", "--json"))

        # Graph failing on every request (after retries): the run stops with exit 1.
        t.sim.faults = FaultInjector(FaultSpec(rate=1.0, seed=1, kinds=("503",)))
        failing = t.run("-v", "run")
        assert failing.exit_code == 1, failing.output
        t.sim.faults = FaultInjector(None)

        # A safety refusal: exit 4.
        data = config_data(tmp_path)
        data["safety"] = {"max_deletes": 0}
        t.config.write_text(yaml.safe_dump(data), encoding="utf-8")
        shutil.rmtree(tmp_path / "export")
        write_export(older(roster), tmp_path / "export")  # one class gone: its team would be archived
        refused = t.run("-v", "run")
        assert refused.exit_code == 4, refused.output

        # The wrong secret: exit 3.
        monkeypatch.setenv("SMARTSYNC_CLIENT_SECRET", WRONG_SECRET)
        denied = t.run("-v", "run")
        assert denied.exit_code == 3, denied.output
        results += [failing, refused, denied]
        text = everything_visible(t, results)
    assert_no_secrets(text, {tok for tap in taps for tok in tap.tokens}, DEMO_SECRET, WRONG_SECRET)


def pem_with_passphrase(passphrase: str) -> tuple[bytes, x509.Certificate]:
    key, cert = self_signed("smartsync app")
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    )
    return encrypted + cert.public_bytes(serialization.Encoding.PEM), cert


def test_certificate_passphrase_and_tokens_stay_out_of_every_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    roster = mini_roster()
    pem, cert = pem_with_passphrase(PASSPHRASE)
    (tmp_path / "app.pem").write_bytes(pem)
    taps: list[TokenTap] = []
    with cli_tenant(tmp_path, monkeypatch, roster) as (t, wraps):
        wraps.append(lambda inner: taps.append(TokenTap(inner)) or taps[-1])
        t.sim.state.app.key_credentials.append(
            {
                "displayName": "CN=smartsync app",
                "endDateTime": "2099-01-01T00:00:00Z",
                "customKeyIdentifier": cert.fingerprint(hashes.SHA1()).hex().upper(),
                "key": cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
            }
        )
        data = config_data(tmp_path)
        data["tenant"].pop("client_secret")
        data["tenant"]["certificate"] = {"path": str(tmp_path / "app.pem"), "passphrase": "${CERT_PASS}"}
        t.config.write_text(yaml.safe_dump(data), encoding="utf-8")
        monkeypatch.setenv("CERT_PASS", PASSPHRASE)
        good = t.run("-v", "run")
        assert good.exit_code == 0, good.output
        monkeypatch.setenv("CERT_PASS", PASSPHRASE + " wrong")
        bad = t.run("-v", "run")
        assert bad.exit_code in (2, 3), bad.output
        text = everything_visible(t, [good, bad])
    assert_no_secrets(text, {tok for tap in taps for tok in tap.tokens}, PASSPHRASE, "correct horse")


def test_initial_passwords_reach_only_the_handout_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sync.users: the new accounts' passwords are in the 0600 hand-out file and nowhere else."""
    roster = mini_roster()
    taps: list[TokenTap] = []
    with cli_tenant(tmp_path, monkeypatch, roster) as (t, wraps):
        wraps.append(lambda inner: taps.append(TokenTap(inner)) or taps[-1])
        state = t.sim.state

        def drop_accounts(prefix: str) -> list[str]:
            with state.lock:
                gone = [u for u in state.users.values() if u.user_principal_name.startswith(prefix)]
                for user in gone:
                    del state.users[user.id]
            return [u.user_principal_name for u in gone]

        state.app.roles.extend(["User.ReadWrite.All", "Domain.Read.All"])
        joiners = drop_accounts("learner1.")
        data = config_data(tmp_path)
        data["sync"]["users"] = {"create": True}
        t.config.write_text(yaml.safe_dump(data), encoding="utf-8")
        results = [
            t.run("-v", "run"),
            t.run("-v", "run", "--json"),
            t.run("-v", "log"),
            t.run("plan", "--json"),
        ]
        results.append(t.run("-v", "log", "--user", joiners[0], "--json"))
        assert [r.exit_code for r in results] == [0, 0, 0, 0, 0], results[0].output
        assert (
            "new-accounts-" in results[0].output
            and "(8 rows, readable only by this user)" in results[0].output
        )

        # More joiners while Graph fails every request: the run stops with exit 1, no account made.
        drop_accounts("learner2.")
        t.sim.faults = FaultInjector(FaultSpec(rate=1.0, seed=3, kinds=("503",)))
        failing = t.run("-v", "run")
        assert failing.exit_code == 1, failing.output
        t.sim.faults = FaultInjector(None)
        created = t.run("-v", "run", "--json")
        assert created.exit_code == 0, created.output
        results += [failing, created]
        text = everything_visible(t, results)
    handouts = sorted((tmp_path / "journal").glob("new-accounts-*.csv"))
    rows = [row for path in handouts for row in list(csv.reader(path.read_text("utf-8").splitlines()))[1:]]
    assert len(handouts) == 2 and len(rows) == 16
    passwords = [row[4] for row in rows]
    assert all(len(p) >= 12 for p in passwords)
    assert_no_secrets(text, {tok for tap in taps for tok in tap.tokens}, DEMO_SECRET, *passwords)
