"""The permission and expiry rules behind `check-credentials`, without a network: which permissions
each feature needs, what counts as too much, which registered credential the config uses."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smartsync.config import Config, parse_config
from smartsync.credentials import (
    Credential,
    compare_roles,
    expiry_warnings,
    key_thumbprints,
    optional_permissions,
    required_permissions,
)

NOW = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)


def config(**sections: Any) -> Config:
    data: dict[str, Any] = {
        "tenant": {"tenant_id": "t", "client_id": "c", "client_secret": "s"},
        "source": {"path": "export"},
        "school": {"code": "NFA"},
    }
    data.update(sections)
    return parse_config(data)


def test_every_feature_on_needs_the_design_list() -> None:
    assert sorted(required_permissions(config())) == sorted(
        [
            "User.Read.All",
            "Group.ReadWrite.All",
            "GroupMember.ReadWrite.All",
            "AdministrativeUnit.ReadWrite.All",
            "Team.Create",
            "TeamSettings.ReadWrite.All",
            "EduRoster.ReadWrite.All",
        ]
    )


@pytest.mark.parametrize(
    ("sections", "absent"),
    [
        ({"sync": {"admin_units": {"enabled": False}}}, {"AdministrativeUnit.ReadWrite.All"}),
        ({"sync": {"teams": {"template": "standard"}}}, {"EduRoster.ReadWrite.All"}),
        ({"removal": {"team": "keep"}}, {"TeamSettings.ReadWrite.All"}),
        (
            {"sync": {"teams": {"enabled": False}}},
            {"Team.Create", "TeamSettings.ReadWrite.All", "EduRoster.ReadWrite.All"},
        ),
    ],
)
def test_switched_off_features_need_nothing(sections: dict[str, Any], absent: set[str]) -> None:
    needed = set(required_permissions(config(**sections)))
    assert not needed & absent
    assert "User.Read.All" in needed


def test_group_readwrite_is_needed_by_groups_and_teams() -> None:
    assert required_permissions(config())["Group.ReadWrite.All"] == ["groups", "teams"]


def test_exact_grants_leave_nothing_missing_or_unused() -> None:
    needs = required_permissions(config())
    result = compare_roles([*needs, "Application.Read.All"], needs)
    assert result.missing == {} and result.unused == [] and result.stand_ins == {}


def test_directory_readwrite_stands_in_and_is_called_broader() -> None:
    needs = required_permissions(config())
    result = compare_roles(["Directory.ReadWrite.All", "Team.Create", "EduRoster.ReadWrite.All"], needs)
    assert result.missing == {}
    assert result.broader(needs) == {
        "Directory.ReadWrite.All": [
            "AdministrativeUnit.ReadWrite.All",
            "Application.Read.All",
            "Group.ReadWrite.All",
            "GroupMember.ReadWrite.All",
            "TeamSettings.ReadWrite.All",
            "User.Read.All",
        ]
    }
    assert result.unused == []


def test_a_permission_nothing_covers_is_missing_with_its_features() -> None:
    needs = required_permissions(config())
    result = compare_roles(["User.Read.All", "Group.Read.All"], needs)
    assert result.missing["Group.ReadWrite.All"] == ["groups", "teams"]
    assert result.missing["EduRoster.ReadWrite.All"] == ["class teams (educationClass template)"]
    assert result.unused == ["Group.Read.All"]


def test_group_readwrite_covers_team_create_only_as_a_stand_in() -> None:
    needs = required_permissions(config())
    granted = [p for p in needs if p not in ("Team.Create", "GroupMember.ReadWrite.All")]
    result = compare_roles(granted, needs)
    assert result.missing == {}
    assert result.stand_ins == {
        "Team.Create": "Group.ReadWrite.All",
        "GroupMember.ReadWrite.All": "Group.ReadWrite.All",
    }
    assert result.broader(needs) == {}  # Group.ReadWrite.All is needed anyway


CERT_DER = b"0\x82not-really-a-certificate-but-bytes"
SHA1 = hashlib.sha1(CERT_DER).hexdigest().upper()


@pytest.mark.parametrize(
    "credential",
    [
        {"customKeyIdentifier": base64.b64encode(bytes.fromhex(SHA1)).decode()},  # Graph's Edm.Binary form
        {"customKeyIdentifier": SHA1},  # hex text, as some tools store it
        {"customKeyIdentifier": None, "key": base64.b64encode(CERT_DER).decode()},  # the certificate itself
    ],
)
def test_a_registered_certificate_is_recognised_by_its_thumbprint(credential: dict[str, Any]) -> None:
    assert SHA1 in key_thumbprints(credential)


def cred(days: float | None, in_use: bool | None = True) -> Credential:
    return Credential("secret", "nightly", None if days is None else NOW + timedelta(days=days), in_use)


@pytest.mark.parametrize(
    ("credential", "problems", "warnings"),
    [
        (cred(45), 0, 0),
        (cred(30), 0, 1),
        (cred(0.5), 0, 1),
        (cred(-1), 1, 0),
        (cred(-1, in_use=None), 0, 1),  # cannot tell: warn, never fail
        (cred(3, in_use=False), 0, 0),  # another credential of the app: not ours to nag about
        (cred(None), 0, 0),  # no end date
    ],
)
def test_expiry_warnings(credential: Credential, problems: int, warnings: int) -> None:
    found = expiry_warnings([credential], NOW)
    assert (len(found[0]), len(found[1])) == (problems, warnings)


def test_days_left_are_rounded_up_so_a_warning_never_says_zero_days() -> None:
    _problems, warnings = expiry_warnings([cred(9.2), cred(0.5)], NOW)
    assert "(in 10 days)" in warnings[0] and "(in 1 day)" in warnings[1]


def test_the_teams_membership_permission_is_optional_and_only_for_teams() -> None:
    with_teams = config()
    assert "TeamMember.ReadWrite.All" not in required_permissions(with_teams)
    assert "TeamMember.ReadWrite.All" in optional_permissions(with_teams)
    granted = [*required_permissions(with_teams), "TeamMember.ReadWrite.All"]
    assert (
        compare_roles(granted, required_permissions(with_teams), optional_permissions(with_teams)).unused
        == []
    )
    no_teams = config(sync={"teams": {"enabled": False}})
    assert "TeamMember.ReadWrite.All" not in optional_permissions(no_teams)
    comparison = compare_roles(granted, required_permissions(no_teams), optional_permissions(no_teams))
    assert "TeamMember.ReadWrite.All" in comparison.unused
