"""The config file: the shipped example, errors that name the key, ${ENV}, secrets and file modes."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from smartsync.cli import cli
from smartsync.config import Config, load_config
from smartsync.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.yaml"
CRONTAB = ROOT / "crontab.example"
SECRET = "s3cr3t-Value~42"

MINIMAL = """\
tenant:
  tenant_id: 11111111-1111-1111-1111-111111111111
  client_id: 22222222-2222-2222-2222-222222222222
  client_secret: ${SMARTSYNC_CLIENT_SECRET}
source:
  type: realsmart-export
  path: export
school:
  code: NFA
"""


def write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "smartsync.yaml"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def key_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key a config file may hold, as dotted paths."""
    paths = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        path = f"{prefix}.{key}" if prefix else key
        paths.append(path)
        for candidate in (field.annotation, *get_args(field.annotation)):
            if (
                isinstance(candidate, type)
                and issubclass(candidate, BaseModel)
                and get_origin(candidate) is None
            ):
                paths.extend(key_paths(candidate, path))
    return paths


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTSYNC_CLIENT_SECRET", SECRET)


# --- the shipped examples -----------------------------------------------------------------------------


def test_example_config_loads(secret_env: None) -> None:
    config, _warnings = load_config(EXAMPLE)
    assert config.tenant.secret() == SECRET
    assert config.school.code == "NFA"
    assert config.source.type == "realsmart-export"
    assert config.sync.groups.type_of("class") == "microsoft365"
    assert config.sync.groups.welcome_email is False and config.sync.groups.hide_from_outlook is True


def test_example_config_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    # Commented-out keys count: optional blocks are documented without being switched on.
    present = set(re.findall(r"^[\s#]*([A-Za-z_]+):", text, flags=re.MULTILINE))
    missing = [path for path in key_paths(Config) if path.rsplit(".", 1)[-1] not in present]
    assert missing == [], f"config.example.yaml does not mention: {', '.join(missing)}"


def test_example_config_without_the_secret_variable_names_key_and_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SMARTSYNC_CLIENT_SECRET", raising=False)
    with pytest.raises(ConfigError) as caught:
        load_config(EXAMPLE)
    assert "tenant.client_secret: environment variable SMARTSYNC_CLIENT_SECRET is not set" in str(
        caught.value
    )


def test_crontab_runs_three_times_a_day_appending_to_a_log() -> None:
    entries = [
        line.split()
        for line in CRONTAB.read_text(encoding="utf-8").splitlines()
        if line.strip()[:1].isdigit()
    ]
    assert len(entries) == 1
    minute, hours, *_rest = entries[0]
    command = " ".join(entries[0][5:])
    assert (minute, hours) == ("0", "4,8,12")
    assert "smartsync --config /etc/smartsync/config.yaml run" in command
    # The report is appended to the log; stderr is left to cron, so failures reach MAILTO.
    assert re.search(r">> \S+\.log$", command) and "2>&1" not in command


# --- errors name the key --------------------------------------------------------------------------------


def run_validate(config: Path) -> Any:
    return CliRunner().invoke(cli, ["--config", str(config), "validate"])


def test_typo_in_a_key_is_exit_2_naming_the_key_path(tmp_path: Path, secret_env: None) -> None:
    result = run_validate(write(tmp_path, MINIMAL + "sync:\n  groups:\n    enabeld: false\n"))
    assert result.exit_code == 2
    assert (
        "sync.groups.enabeld: unknown key (check the spelling against config.example.yaml)" in result.stderr
    )


def test_unknown_group_kind_lists_the_allowed_kinds(tmp_path: Path, secret_env: None) -> None:
    result = run_validate(write(tmp_path, MINIMAL + "sync:\n  groups:\n    kinds: [class, mentor, clas]\n"))
    assert result.exit_code == 2
    assert (
        "sync.groups.kinds[2]: 'clas' is not one of class, mentor, year, group, all_learners, all_staff"
        in result.stderr
    )


def test_missing_required_key_is_named(tmp_path: Path, secret_env: None) -> None:
    result = run_validate(write(tmp_path, MINIMAL.replace("school:\n  code: NFA\n", "")))
    assert result.exit_code == 2
    assert "school: required key is missing" in result.stderr


def test_missing_config_file_is_exit_2_with_the_next_step(tmp_path: Path) -> None:
    result = run_validate(tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert "does not exist. Copy config.example.yaml to start." in result.stderr


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    result = run_validate(write(tmp_path, MINIMAL + "users:\n  match: [unclosed\n"))
    assert result.exit_code == 2
    assert "is not valid YAML at line" in result.stderr


# --- ${ENV} and secrets ----------------------------------------------------------------------------------


def test_env_references_are_expanded_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTSYNC_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("SCHOOL_CODE", "RSA")
    monkeypatch.setenv("EXPORT_ROOT", "/srv/exports")
    text = MINIMAL.replace("code: NFA", "code: ${SCHOOL_CODE}").replace(
        "path: export", "path: ${EXPORT_ROOT}/today"
    )
    config, _ = load_config(write(tmp_path, text))
    assert config.school.code == "RSA"
    assert config.source.path == Path("/srv/exports/today")
    assert config.tenant.secret() == SECRET


def test_missing_env_variable_names_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTSYNC_CLIENT_SECRET", SECRET)
    monkeypatch.delenv("EXPORT_ROOT", raising=False)
    result = run_validate(write(tmp_path, MINIMAL.replace("path: export", "path: ${EXPORT_ROOT}/today")))
    assert result.exit_code == 2
    assert "source.path: environment variable EXPORT_ROOT is not set" in result.stderr


def test_client_secret_file_is_read_and_its_absence_named(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n", encoding="utf-8")
    secret_file.chmod(0o600)
    text = MINIMAL.replace("client_secret: ${SMARTSYNC_CLIENT_SECRET}", f"client_secret_file: {secret_file}")
    config, warnings = load_config(write(tmp_path, text, mode=0o644))
    assert config.tenant.secret() == SECRET
    assert warnings == []  # the config itself holds no secret, so its mode does not matter

    secret_file.unlink()
    with pytest.raises(ConfigError, match=r"tenant\.client_secret_file: cannot read"):
        config.tenant.secret()


def test_two_credentials_at_once_are_refused(tmp_path: Path, secret_env: None) -> None:
    text = MINIMAL.replace(
        "  client_secret:", "  client_secret_file: /etc/smartsync/secret\n  client_secret:"
    )
    result = run_validate(write(tmp_path, text))
    assert result.exit_code == 2
    assert "give only one of client_secret, client_secret_file, certificate" in result.stderr


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_readable_config_holding_a_literal_secret_warns(tmp_path: Path) -> None:
    text = MINIMAL.replace("${SMARTSYNC_CLIENT_SECRET}", SECRET)
    config_path = write(tmp_path, text, mode=0o644)

    _, warnings = load_config(config_path)

    assert len(warnings) == 1
    assert "holds a secret and is readable by others (mode 644)" in warnings[0]
    assert f"chmod 640 {config_path}" in warnings[0]
    assert SECRET not in warnings[0]
    result = run_validate(config_path)
    assert "warning: " in result.stdout and SECRET not in result.output + result.stderr


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_private_config_or_env_reference_does_not_warn(tmp_path: Path, secret_env: None) -> None:
    assert load_config(write(tmp_path, MINIMAL.replace("${SMARTSYNC_CLIENT_SECRET}", SECRET)))[1] == []
    assert load_config(write(tmp_path, MINIMAL, mode=0o644))[1] == []


def test_secret_never_appears_in_errors_or_repr(tmp_path: Path) -> None:
    text = MINIMAL.replace("${SMARTSYNC_CLIENT_SECRET}", SECRET) + "safety:\n  max_deletes: -1\n"
    result = run_validate(write(tmp_path, text))
    assert result.exit_code == 2
    assert "safety.max_deletes" in result.stderr
    assert SECRET not in result.output
    config, _ = load_config(write(tmp_path, MINIMAL.replace("${SMARTSYNC_CLIENT_SECRET}", SECRET)))
    assert SECRET not in repr(config) and SECRET not in str(config.model_dump())
