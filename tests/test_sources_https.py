"""`realsmart-https` against a local HTTPS server: paging, refusals, retries, truncation, TLS trust."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from smartsync.cli import cli
from smartsync.config import SourceConfig, parse_config
from smartsync.errors import ConfigError, InputDataError
from smartsync.roster.sources import InvalidExportError, read_roster
from smartsync.roster.sources.https import read_realsmart_https
from smartsync.simulator.server import generate_certificates

TOKEN = "s3cret-export-token-0123456789"

USERS = [
    {"id": "L1", "role": "learner", "email": "amy@nfa.example", "first_name": "Amy", "last_name": "P",
     "year_group": "Year 7"},
    {"id": "L2", "role": "learner", "email": "ben@nfa.example", "first_name": "Ben", "last_name": "O",
     "year_group": "Year 7"},
    {"id": "S1", "role": "staff", "email": "tess@nfa.example", "first_name": "Tess", "last_name": "T"},
]  # fmt: skip
GROUPS = [{"id": "4711", "name": "7A/Ma1", "type": "class", "subject": "Maths"}]
MEMBERSHIPS = [
    {"group_id": "4711", "user_id": "L1", "role": "learner"},
    {"group_id": "4711", "user_id": "L2", "role": "learner"},
    {"group_id": "4711", "user_id": "S1", "role": "teacher"},
]


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    cut_to: int | None = None  # send only this many bytes of the body, announcing all of them


def page(next_link: str | None = None, **lists: Any) -> Reply:
    return Reply(body=json.dumps({**lists, "next": next_link}).encode())


@dataclass
class ExportServer:
    base_url: str
    ca_cert: Path
    replies: dict[str, list[Reply]]  # path with query -> replies in turn (the last one repeats)
    seen: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Authorization)

    def url(self, path: str) -> str:
        return self.base_url + path


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ExportServer]:
    certs = generate_certificates(tmp_path / "certs")
    state = ExportServer("", certs.ca_cert, {})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.seen.append((self.path, self.headers.get("Authorization")))
            queue = state.replies.get(self.path) or [Reply(404, b"{}")]
            reply = queue.pop(0) if len(queue) > 1 else queue[0]
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body if reply.cut_to is None else reply.body[: reply.cut_to])
            if reply.cut_to is not None:
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(certs.server_cert, certs.server_key)
    httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    state.base_url = f"https://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def source(server: ExportServer, path: str = "/export", **extra: Any) -> SourceConfig:
    values: dict[str, Any] = {
        "type": "realsmart-https",
        "url": server.url(path),
        "token": SecretStr(TOKEN),
        "ca_bundle": server.ca_cert,
        "timeout_seconds": 5,
        "retries": 2,
    }
    return SourceConfig(**{**values, **extra})


def no_sleep(_seconds: float) -> None:
    pass


def test_a_paged_export_is_read_whole_with_the_token_on_every_page(server: ExportServer) -> None:
    server.replies = {
        "/export": [page("/export?page=2", users=USERS[:2], groups=GROUPS)],
        "/export?page=2": [page(server.url("/export?page=3"), users=USERS[2:], memberships=MEMBERSHIPS[:1])],
        "/export?page=3": [page(None, memberships=MEMBERSHIPS[1:])],
    }

    roster = read_roster(source(server))

    assert [p.id for p in roster.people] == ["L1", "L2", "S1"]
    assert len(roster.memberships) == 3 and roster.groups[0].name == "7A/Ma1"
    assert roster.source == f"realsmart-https: {server.url('/export')} (3 pages)"
    assert [auth for _path, auth in server.seen] == [f"Bearer {TOKEN}"] * 3


def test_the_same_validation_as_the_json_export_applies(server: ExportServer) -> None:
    bad = [*MEMBERSHIPS, {"group_id": "4711", "user_id": "NOPE", "role": "learner"}]
    server.replies = {"/export": [page(None, users=USERS, groups=GROUPS, memberships=bad)]}
    with pytest.raises(InvalidExportError) as caught:
        read_roster(source(server))
    assert [(p.column, p.message) for p in caught.value.problems] == [
        ("memberships[3].user_id", "user id 'NOPE' is not in users.csv")
    ]


def test_a_401_is_a_config_error_naming_the_setting_without_the_token(server: ExportServer) -> None:
    server.replies = {"/export": [Reply(401, b'{"error": "bad token"}')]}
    with pytest.raises(ConfigError) as caught:
        read_roster(source(server))
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert "HTTP 401" in message and "source.token" in message
    assert TOKEN not in message


def test_validate_exits_2_on_a_401_and_never_prints_the_token(
    server: ExportServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.replies = {"/export?key=abc": [Reply(403, b"{}")]}
    monkeypatch.setenv("REALSMART_TOKEN", TOKEN)
    config = tmp_path / "smartsync.yaml"
    config.write_text(
        "tenant:\n"
        "  tenant_id: 00000000-0000-0000-0000-000000000000\n"
        "  client_id: 00000000-0000-0000-0000-000000000000\n"
        "  client_secret_file: secret.txt\n"
        "source:\n"
        "  type: realsmart-https\n"
        f"  url: {server.url('/export?key=abc')}\n"
        "  token: ${REALSMART_TOKEN}\n"
        f"  ca_bundle: {json.dumps(str(server.ca_cert))}\n"
        "school:\n  code: NFA\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["--config", str(config), "validate"])
    assert result.exit_code == 2
    assert "HTTP 403" in result.output
    assert TOKEN not in result.output and "key=abc" not in result.output


def test_a_truncated_body_is_an_error_not_a_half_read_roster(server: ExportServer) -> None:
    whole = page(None, users=USERS, groups=GROUPS, memberships=MEMBERSHIPS)
    server.replies = {"/export": [Reply(body=whole.body, cut_to=len(whole.body) // 2)]}
    waits: list[float] = []

    with pytest.raises(InputDataError) as caught:
        read_realsmart_https(source(server), sleep=waits.append, backoff_base=0.01)

    assert not isinstance(caught.value, InvalidExportError)  # no roster comes with it
    assert "cut off" in caught.value.problems[0].message
    assert "after 3 attempts" in caught.value.problems[0].message
    assert len(server.seen) == 3 and waits == [0.01, 0.02]


def test_a_server_error_or_a_cut_body_is_retried_then_read(server: ExportServer) -> None:
    whole = page(None, users=USERS, groups=GROUPS, memberships=MEMBERSHIPS)
    server.replies = {
        "/export": [
            Reply(503, b"{}", {"Retry-After": "0.5"}),
            Reply(body=whole.body, cut_to=10),
            whole,
        ]
    }
    waits: list[float] = []
    roster = read_realsmart_https(source(server), sleep=waits.append, backoff_base=0.01)
    assert len(roster.people) == 3
    assert waits == [0.5, 0.02]  # Retry-After honoured, then backoff


def test_a_next_link_to_another_server_is_refused(server: ExportServer) -> None:
    server.replies = {"/export": [page("https://elsewhere.example/export?page=2", users=USERS)]}
    with pytest.raises(InputDataError) as caught:
        read_realsmart_https(source(server), sleep=no_sleep)
    assert "another server" in caught.value.problems[0].message
    assert len(server.seen) == 1


def test_a_next_link_loop_is_refused(server: ExportServer) -> None:
    server.replies = {"/export": [page("/export", users=USERS)]}
    with pytest.raises(InputDataError, match="problem") as caught:
        read_realsmart_https(source(server), sleep=no_sleep)
    assert "points back at an earlier page" in caught.value.problems[0].message


def test_an_untrusted_certificate_names_ca_bundle(server: ExportServer) -> None:
    server.replies = {"/export": [page(None, users=USERS, groups=GROUPS, memberships=MEMBERSHIPS)]}
    with pytest.raises(ConfigError, match=r"source\.ca_bundle"):
        read_realsmart_https(source(server, ca_bundle=None), sleep=no_sleep)


def test_plain_http_and_a_missing_token_are_config_errors() -> None:
    base = {
        "tenant": {"tenant_id": "t", "client_id": "c", "client_secret": "x"},
        "school": {"code": "NFA"},
    }
    with pytest.raises(ConfigError, match="must start with https://"):
        parse_config({**base, "source": {"type": "realsmart-https", "url": "http://mis.example/export"}})
    with pytest.raises(ConfigError, match=r"source\.token is required"):
        read_roster(SourceConfig(type="realsmart-https", url="https://127.0.0.1:9/export"))


def test_a_full_run_from_the_https_export(server: ExportServer, tmp_path: Path) -> None:
    from harness import tenant

    server.replies = {
        "/export": [page("/export?page=2", users=USERS, groups=GROUPS)],
        "/export?page=2": [page(None, memberships=MEMBERSHIPS)],
    }
    roster = read_roster(source(server))
    with tenant(tmp_path, roster, missing_every=None) as t:
        assert t.sync(roster).status == "ok"
        users = {u["id"]: u["userPrincipalName"] for u in t.state()["users"]}
        maths = next(g for g in t.managed_groups().values() if g["displayName"] == "7A/Ma1 Maths")
        assert {users[m] for m in maths["members"]} == {u["email"] for u in USERS}
        assert {users[o] for o in t.user_owners(maths)} == {"tess@nfa.example"}
        assert t.sync(roster).plan.empty


def test_a_redirect_on_the_same_server_is_followed_with_the_token(server: ExportServer) -> None:
    server.replies = {
        "/export": [Reply(302, b"", {"Location": "/moved"})],
        "/moved": [page(None, users=USERS, groups=GROUPS, memberships=MEMBERSHIPS)],
    }
    roster = read_realsmart_https(source(server), sleep=no_sleep)
    assert len(roster.people) == 3
    assert server.seen == [("/export", f"Bearer {TOKEN}"), ("/moved", f"Bearer {TOKEN}")]


def test_a_redirect_to_another_server_is_refused_without_sending_the_token(server: ExportServer) -> None:
    server.replies = {"/export": [Reply(302, b"", {"Location": "https://elsewhere.example/export"})]}
    with pytest.raises(InputDataError) as caught:
        read_realsmart_https(source(server), sleep=no_sleep)
    message = caught.value.problems[0].message
    assert "redirects to https://elsewhere.example/export" in message and "another server" in message
    assert TOKEN not in message
    assert len(server.seen) == 1
