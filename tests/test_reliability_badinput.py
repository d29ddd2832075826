"""Bad input: broken exports, configs and Graph responses give a clear error, the right exit code, no writes.

The corpus is in `tests/fixtures/broken/` (see its README). Each case runs the real `smartsync run`
command in process, against a simulated tenant that already holds an earlier sync and would need
writes for this roster, so "nothing was written" is a claim that could fail.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner, Result
from test_reliability_support import mini_roster

import smartsync.graph
from smartsync.cli import cli
from smartsync.config import Config
from smartsync.demo import DEMO_BASE_URL, DEMO_CLIENT, DEMO_SECRET, DEMO_TENANT, demo_seed
from smartsync.graph.retry import Backoff
from smartsync.roster.model import Roster
from smartsync.roster.sample import write_export
from smartsync.simulator import Simulator

BROKEN = Path(__file__).parent / "fixtures" / "broken"
BAD_EXPORTS = Path(__file__).parent / "fixtures" / "bad_exports"
Wrap = Callable[[httpx.BaseTransport], httpx.BaseTransport]


@dataclass
class CliTenant:
    sim: Simulator
    config: Path
    folder: Path

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(cli, ["--config", str(self.config), *args])

    def writes(self) -> int:
        return int(self.sim.stats()["writes"])


def config_data(folder: Path) -> dict[str, Any]:
    return {
        "tenant": {
            "tenant_id": DEMO_TENANT,
            "client_id": DEMO_CLIENT,
            "client_secret": "${SMARTSYNC_CLIENT_SECRET}",
            "authority_host": DEMO_BASE_URL,
            "graph_endpoint": DEMO_BASE_URL,
        },
        "source": {"type": "realsmart-export", "path": str(folder / "export")},
        "school": {"code": "MIN", "name": "Mini School"},
        "journal": {"path": str(folder / "journal" / "changes.jsonl")},
        "sync": {"teams": {"creation_retry_seconds": 0, "poll_seconds": 0, "poll_timeout_seconds": 5}},
        "graph": {"full_read": "every-run"},  # the broken answers below are those of a full read
    }


@contextmanager
def cli_tenant(
    folder: Path, monkeypatch: pytest.MonkeyPatch, roster: Roster, *, synced: Roster | None = None
) -> Iterator[tuple[CliTenant, list[Wrap]]]:
    """A tenant already synced to `synced` (an older roster), and a config whose export holds `roster`.

    Append a wrapper to the yielded list to put a broken network between smartsync and the tenant.
    """
    sim = Simulator(demo_seed(roster, missing_every=None), base_url=DEMO_BASE_URL, time_scale=1000)
    wraps: list[Wrap] = []
    real = smartsync.graph.make_graph_client

    def make(config: Config, **kwargs: Any) -> Any:
        transport: httpx.BaseTransport = sim.transport()
        for wrap in wraps:
            transport = wrap(transport)
        kwargs.update(transport=transport, backoff=Backoff(base=0.0005, cap=0.03))
        return real(config, **kwargs)

    monkeypatch.setattr(smartsync.graph, "make_graph_client", make)
    monkeypatch.setenv("SMARTSYNC_CLIENT_SECRET", DEMO_SECRET)
    config = folder / "smartsync.yaml"
    config.write_text(yaml.safe_dump(config_data(folder)), encoding="utf-8")
    config.chmod(0o600)
    t = CliTenant(sim, config, folder)
    if synced is not None:
        write_export(synced, folder / "export")
        first = t.run("run")
        assert first.exit_code == 0, first.output
        shutil.rmtree(folder / "export")
    write_export(roster, folder / "export")
    yield t, wraps


def older(roster: Roster) -> Roster:
    """The roster as it was a term ago: one class and its memberships fewer."""
    gone = roster.groups[0].id
    return Roster(
        roster.people,
        roster.groups[1:],
        tuple(m for m in roster.memberships if m.group_id != gone),
    )


def assert_clear_failure(result: Result, code: int, *words: str) -> None:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    # A stop before applying says "error:"; a run that applied nothing lists its failures instead.
    assert "error:" in result.output or "failures (" in result.output.lower()
    for word in words:
        assert word in result.output


# -- exports -----------------------------------------------------------------------------------------


def export_cases() -> list[Path]:
    return sorted(p for p in BROKEN.joinpath("exports").iterdir() if p.is_dir()) + sorted(
        p for p in BAD_EXPORTS.iterdir() if p.is_dir()
    )


@pytest.mark.parametrize("case", export_cases(), ids=lambda p: p.name)
def test_a_broken_export_stops_the_run_with_exit_2_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: Path
) -> None:
    roster = mini_roster()
    with cli_tenant(tmp_path, monkeypatch, roster, synced=older(roster)) as (t, _wraps):
        shutil.rmtree(tmp_path / "export")
        files = [f for f in case.iterdir() if f.name != "expect.txt"]
        if len(files) == 1 and files[0].suffix in (".json", ".zip"):
            target = tmp_path / files[0].name
            shutil.copy(files[0], target)
        else:
            target = tmp_path / "export"
            shutil.copytree(case, target)
        data = config_data(tmp_path)
        data["source"]["path"] = str(target)
        t.config.write_text(yaml.safe_dump(data), encoding="utf-8")
        writes, requests = t.writes(), t.sim.stats()["requests"]
        result = t.run("run")
        assert_clear_failure(result, 2, "nothing was written")
        assert t.writes() == writes
        assert t.sim.stats()["requests"] == requests  # the export is checked before Entra is asked


# -- configs -----------------------------------------------------------------------------------------

CONFIG_WORDS = {
    "not_yaml.yaml": ["not valid YAML", "line"],
    "typo_key.yaml": ["sync.groups.enabeld"],
    "wrong_type.yaml": ["safety.max_deletes"],
    "missing_env.yaml": ["SMARTSYNC_NOT_SET_ANYWHERE"],
    "list_not_mapping.yaml": ["mapping"],
    "two_credentials.yaml": ["only one of"],
    "unknown_source_type.yaml": ["source.type"],
}


def test_the_config_corpus_is_covered() -> None:
    assert sorted(p.name for p in BROKEN.joinpath("configs").iterdir()) == sorted(CONFIG_WORDS)


@pytest.mark.parametrize("name", sorted(CONFIG_WORDS))
def test_a_broken_config_stops_with_exit_2_naming_the_key_and_contacts_nobody(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    roster = mini_roster()
    with cli_tenant(tmp_path, monkeypatch, roster) as (t, _wraps):
        shutil.copy(BROKEN / "configs" / name, t.config)
        result = t.run("run")
        assert_clear_failure(result, 2, *CONFIG_WORDS[name])
        assert t.sim.stats()["requests"] == 0 and t.sim.stats()["login_requests"] == 0


# -- Graph responses ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokenAnswer:
    """Answer matching requests with a fixture instead of the tenant's answer."""

    method: str
    path: str
    status: int
    fixture: str
    content_type: str = "application/json"
    query_has: str = ""


class BreakAnswers(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport, answers: tuple[BrokenAnswer, ...]) -> None:
        self.inner = inner
        self.answers = answers
        self.used = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        query = request.url.query.decode()
        for answer in self.answers:
            if (
                request.method == answer.method
                and request.url.path == answer.path
                and answer.query_has in query
            ):
                self.used += 1
                body = (BROKEN / "graph" / answer.fixture).read_bytes()
                return httpx.Response(
                    answer.status, headers={"content-type": answer.content_type}, content=body
                )
        return self.inner.handle_request(request)


GRAPH_CASES: dict[str, tuple[tuple[BrokenAnswer, ...], list[str]]] = {
    "truncated JSON": ((BrokenAnswer("GET", "/v1.0/users", 200, "truncated_json.json"),), ["users"]),
    "proxy error page": (
        (BrokenAnswer("GET", "/v1.0/users", 502, "proxy_error_page.html", "text/html"),),
        ["502", "proxy", "Bad Gateway"],
    ),
    "proxy login page": (
        (BrokenAnswer("GET", "/v1.0/groups", 200, "proxy_login_page.html", "text/html"),),
        ["proxy", "Web filter"],
    ),
    "null value list": ((BrokenAnswer("GET", "/v1.0/users", 200, "null_value.json"),), ["'value' list"]),
    "null rows": ((BrokenAnswer("GET", "/v1.0/users", 200, "null_rows.json"),), ["/users", "not objects"]),
    "next link elsewhere": (
        (BrokenAnswer("GET", "/v1.0/groups", 200, "foreign_next_link.json"),),
        ["evil.example", "does not send its token"],
    ),
    "next page gone": (
        (
            BrokenAnswer("GET", "/v1.0/users", 404, "next_page_gone.json", query_has="skiptoken"),
            BrokenAnswer("GET", "/v1.0/users", 200, "next_page_first.json"),
        ),
        ["404", "page token"],
    ),
    "batch without responses": (
        (BrokenAnswer("POST", "/v1.0/$batch", 200, "batch_null_responses.json"),),
        ["$batch"],
    ),
}


@pytest.mark.parametrize("case", sorted(GRAPH_CASES))
def test_a_broken_graph_answer_stops_the_run_with_a_clear_error_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    answers, words = GRAPH_CASES[case]
    roster = mini_roster()
    with cli_tenant(tmp_path, monkeypatch, roster, synced=older(roster)) as (t, wraps):
        breaker: list[BreakAnswers] = []
        wraps.append(lambda inner: breaker.append(BreakAnswers(inner, answers)) or breaker[-1])
        writes = t.writes()
        result = t.run("run")
        assert breaker and breaker[0].used
        assert_clear_failure(result, 1, "Graph", *words)
        assert t.writes() == writes
        journal = (tmp_path / "journal" / "changes.jsonl").read_text(encoding="utf-8")
        assert '"op":' not in journal.split('"event":"run.end"')[-1]  # no change after the last good run


def test_graph_fixture_files_are_all_used() -> None:
    used = {a.fixture for answers, _ in GRAPH_CASES.values() for a in answers}
    assert used == {p.name for p in BROKEN.joinpath("graph").iterdir()}


def test_next_page_fixture_points_at_the_tenant() -> None:
    first = json.loads((BROKEN / "graph" / "next_page_first.json").read_text(encoding="utf-8"))
    assert first["@odata.nextLink"].startswith(DEMO_BASE_URL)
