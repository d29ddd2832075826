"""Acceptance: `check-credentials` against the simulator served over HTTPS, for a correct app
registration and for each way a set-up goes wrong on day one (issue 6)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_setup_support import (
    CLIENT_ID,
    LEAST_PRIVILEGE,
    PROXY_VARIABLES,
    SECRET,
    SECRET_ID,
    TENANT_ID,
    app_seed,
    https_simulator,
    invoke,
    secret_credential,
    write_config,
)

from smartsync.errors import EXIT_AUTH


@pytest.fixture(autouse=True)
def _direct_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_a_correct_app_passes_with_the_documented_json(tmp_path: Path) -> None:
    with https_simulator(tmp_path, app_seed()) as server:
        config = write_config(tmp_path, server.base_url, server.ca_cert)
        result = invoke(config, "check-credentials", "--json")
        text = invoke(config, "check-credentials")

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True and report["signed_in"] is True and report["error"] is None
    assert report["granted"] == sorted(LEAST_PRIVILEGE)
    assert report["missing"] == [] and report["unused"] == [] and report["stand_ins"] == []
    assert report["problems"] == [] and report["warnings"] == []
    assert report["expiry_known"] is True
    assert report["credentials"] == [
        {
            "kind": "secret",
            "name": "smartsync",
            "expires": report["credentials"][0]["expires"],
            "in_use": True,
        }
    ]
    assert text.exit_code == 0
    assert f"Signed in to tenant {TENANT_ID} as app {CLIENT_ID}." in text.output
    assert "(in use)" in text.output and text.output.rstrip().endswith("OK: smartsync can run.")
    assert SECRET not in result.output + text.output


# Each broken set-up: what is wrong in the config, the AADSTS code, and words of the fix it must give.
BROKEN = {
    "wrong tenant": (
        {"tenant_id": "0badc0de-0000-4000-8000-000000000000"},
        "AADSTS90002",
        "tenant.tenant_id",
    ),
    "unknown client id": (
        {"client_id": "0badc0de-1111-4000-8000-000000000000"},
        "AADSTS700016",
        "tenant.client_id",
    ),
    "invalid secret": ({"client_secret": SECRET[:-4] + "XXXX"}, "AADSTS7000215", "not a current secret"),
    "secret ID instead of its value": ({"client_secret": SECRET_ID}, "AADSTS7000215", "holds a secret ID"),
    "graph endpoint of another cloud": (
        {"graph_endpoint": "https://graph.microsoft.us"},
        "AADSTS70011",
        "tenant.graph_endpoint",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_broken_set_up_fails_with_its_own_message_and_exit_3(tmp_path: Path, case: str) -> None:
    tenant, code, fix = BROKEN[case]
    with https_simulator(tmp_path, app_seed()) as server:
        config = write_config(tmp_path, server.base_url, server.ca_cert, tenant=tenant)
        text = invoke(config, "check-credentials")
        as_json = invoke(config, "check-credentials", "--json")

    assert text.exit_code == EXIT_AUTH, text.output
    assert code in text.output and fix in text.output
    assert "OK: smartsync can run" not in text.output
    document = json.loads(as_json.stdout)
    assert as_json.exit_code == EXIT_AUTH
    assert document["ok"] is False and document["signed_in"] is False
    assert document["error"]["code"] == code and fix in document["error"]["message"]
    assert SECRET not in text.output + as_json.output


def test_the_messages_for_the_broken_set_ups_are_all_different(tmp_path: Path) -> None:
    messages = set()
    with https_simulator(tmp_path, app_seed()) as server:
        for tenant, _code, _fix in BROKEN.values():
            config = write_config(tmp_path, server.base_url, server.ca_cert, tenant=tenant)
            output = invoke(config, "check-credentials").output
            # Entra's own text (after "Entra said:") repeats between cases; smartsync's advice must not.
            messages.add(output.split("Entra said:")[0])
    assert len(messages) == len(BROKEN)


def test_an_expired_secret_fails_with_aadsts7000222(tmp_path: Path) -> None:
    seed = app_seed(password_credentials=[secret_credential(-3)])
    with https_simulator(tmp_path, seed) as server:
        config = write_config(tmp_path, server.base_url, server.ca_cert)
        result = invoke(config, "check-credentials")

    assert result.exit_code == EXIT_AUTH
    assert "AADSTS7000222" in result.output and "has expired" in result.output
    assert "create a new client secret" in result.output


def test_an_untrusted_tls_certificate_names_ca_bundle(tmp_path: Path) -> None:
    with https_simulator(tmp_path, app_seed()) as server:
        config = write_config(tmp_path, server.base_url, ca_cert=None)
        result = invoke(config, "check-credentials")
        as_json = invoke(config, "check-credentials", "--json")

    assert result.exit_code == EXIT_AUTH
    assert "not trusted" in result.output and "tenant.ca_bundle" in result.output
    assert json.loads(as_json.stdout)["error"]["code"] == "TLS"


def test_an_unreachable_proxy_is_named_without_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxyuser:proxy-pa55@127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "")
    with https_simulator(tmp_path, app_seed()) as server:
        config = write_config(tmp_path, server.base_url, server.ca_cert)
        result = invoke(config, "check-credentials")

    assert result.exit_code == EXIT_AUTH
    assert "proxy http://127.0.0.1:9" in result.output and "HTTPS_PROXY" in result.output
    assert "proxy-pa55" not in result.output and "proxyuser" not in result.output


def test_a_missing_permission_is_named_with_its_feature(tmp_path: Path) -> None:
    roles = [
        r for r in LEAST_PRIVILEGE if r not in ("AdministrativeUnit.ReadWrite.All", "EduRoster.ReadWrite.All")
    ]
    with https_simulator(tmp_path, app_seed(roles=roles)) as server:
        config = write_config(tmp_path, server.base_url, server.ca_cert)
        text = invoke(config, "check-credentials")
        as_json = invoke(config, "check-credentials", "--json")

    assert text.exit_code == EXIT_AUTH and as_json.exit_code == EXIT_AUTH
    assert re.search(
        r"Missing application permission AdministrativeUnit\.ReadWrite\.All \(needed by admin units\)",
        text.output,
    )
    assert "EduRoster.ReadWrite.All (needed by class teams (educationClass template))" in text.output
    assert "Grant admin consent" in text.output and "NOT OK" in text.output
    document = json.loads(as_json.stdout)
    assert document["signed_in"] is True and document["ok"] is False
    assert {m["permission"]: m["needed_by"] for m in document["missing"]} == {
        "AdministrativeUnit.ReadWrite.All": ["admin units"],
        "EduRoster.ReadWrite.All": ["class teams (educationClass template)"],
    }


def test_permissions_of_features_switched_off_are_not_required(tmp_path: Path) -> None:
    roles = ["User.Read.All", "Group.ReadWrite.All", "GroupMember.ReadWrite.All"]
    with https_simulator(tmp_path, app_seed(roles=roles)) as server:
        config = write_config(
            tmp_path,
            server.base_url,
            server.ca_cert,
            sync={"admin_units": {"enabled": False}, "teams": {"enabled": False}},
        )
        result = invoke(config, "check-credentials", "--json")

    document = json.loads(result.stdout)
    assert result.exit_code == 0 and document["missing"] == []
    # Without Application.Read.All the expiry is unknown: a warning, not a failure.
    assert document["expiry_known"] is False
    assert any("Application.Read.All" in w for w in document["warnings"])


def test_what_the_seed_instructions_grant_is_warned_about_as_too_much(tmp_path: Path) -> None:
    # The usual "grant everything" set-up: it works, but smartsync names what to take away.
    roles = [
        "Directory.ReadWrite.All",
        "Group.ReadWrite.All",
        "User.Read.All",
        "Team.Create",
        "TeamSettings.ReadWrite.All",
        "EduRoster.ReadWrite.All",
        "Sites.FullControl.All",
        "Calendars.ReadWrite",
        "Mail.Send",
    ]
    with https_simulator(tmp_path, app_seed(roles=roles)) as server:
        config = write_config(tmp_path, server.base_url, server.ca_cert)
        result = invoke(config, "check-credentials", "--json")

    document = json.loads(result.stdout)
    assert result.exit_code == 0, result.output
    assert document["unused"] == ["Calendars.ReadWrite", "Mail.Send", "Sites.FullControl.All"]
    assert any(
        w.startswith("Granted but never used") and "Sites.FullControl.All" in w for w in document["warnings"]
    )
    # Directory.ReadWrite.All is doing the work of narrower permissions: grant those, then remove it.
    broad = next(w for w in document["warnings"] if w.startswith("Directory.ReadWrite.All is broader"))
    assert "AdministrativeUnit.ReadWrite.All" in broad and "then remove Directory.ReadWrite.All" in broad
    assert {
        "permission": "AdministrativeUnit.ReadWrite.All",
        "granted_instead": "Directory.ReadWrite.All",
    } in (document["stand_ins"])


@pytest.mark.parametrize(("days_left", "warned"), [(12, True), (29, True), (45, False)])
def test_a_secret_expiring_within_30_days_warns(tmp_path: Path, days_left: int, warned: bool) -> None:
    seed = app_seed(password_credentials=[secret_credential(days_left, name="nightly sync")])
    with https_simulator(tmp_path, seed) as server:
        config = write_config(tmp_path, server.base_url, server.ca_cert)
        result = invoke(config, "check-credentials", "--json")

    document = json.loads(result.stdout)
    assert result.exit_code == 0 and document["ok"] is True
    expiry = [w for w in document["warnings"] if "nightly sync" in w]
    if warned:
        assert len(expiry) == 1 and f"in {days_left} days" in expiry[0]
        assert "Certificates & secrets" in expiry[0]
    else:
        assert expiry == []


def test_another_expiring_secret_not_in_use_is_not_warned_about(tmp_path: Path) -> None:
    other = {"displayName": "old laptop test", "hint": "abc", "endDateTime": "2020-01-01T00:00:00Z"}
    seed = app_seed(password_credentials=[secret_credential(200), other])
    with https_simulator(tmp_path, seed) as server:
        config = write_config(tmp_path, server.base_url, server.ca_cert)
        document = json.loads(invoke(config, "check-credentials", "--json").stdout)

    assert document["ok"] is True and document["warnings"] == []
    assert [c["in_use"] for c in document["credentials"]] == [True, False]


def test_without_the_teams_membership_permission_the_check_passes_with_a_warning(tmp_path: Path) -> None:
    roles = [r for r in LEAST_PRIVILEGE if r != "TeamMember.ReadWrite.All"]
    with https_simulator(tmp_path, app_seed(roles=roles)) as server:
        config = write_config(tmp_path, server.base_url, server.ca_cert)
        result = invoke(config, "check-credentials", "--json")

    document = json.loads(result.stdout)
    assert result.exit_code == 0 and document["ok"] is True and document["missing"] == []
    assert {"permission": "TeamMember.ReadWrite.All", "granted": False} in document["optional"]
    (warning,) = [w for w in document["warnings"] if "TeamMember.ReadWrite.All" in w]
    assert "optional" in warning and "take hours to reach Teams" in warning
