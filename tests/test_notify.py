"""Notifications: real SMTP and HTTP conversations with local receivers, and secrets kept out of output."""

from __future__ import annotations

import base64
import json
import logging
import socket
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from smartsync.config import NotificationsConfig, parse_config
from smartsync.errors import ConfigError
from smartsync.notify import RunOutcome, notify

PASSWORD = "s3cret-smtp-pa55word"
HOOK_TOKEN = "hook-token-9f8e7d"
HEADER_SECRET = "Bearer header-secret-1234"

FAILED = RunOutcome(
    status="failed",
    school="Northfield Academy",
    summary={"groups_created": 2, "members_added": 40, "members_removed": 0},
    message="Graph answered 503 for 3 minutes; 12 changes were not applied.",
    run_id="20261126T040002Z-3f2a",
)
OK = RunOutcome(
    status="ok", school="Northfield Academy", summary={"members_added": 1}, message="", run_id="r-ok"
)


# --- a tiny SMTP receiver -------------------------------------------------------------------------


@dataclass
class Mailbox:
    reject_auth: bool = False
    logins: list[tuple[str, str]] = field(default_factory=list)
    envelopes: list[tuple[str, list[str], Message]] = field(default_factory=list)
    connections: int = 0


class _SMTPHandler(socketserver.StreamRequestHandler):
    server: _SMTPServer

    def _reply(self, *lines: str) -> None:
        self.wfile.write("".join(f"{line}\r\n" for line in lines).encode())

    def handle(self) -> None:
        box = self.server.mailbox
        box.connections += 1
        self._reply("220 receiver ESMTP")
        sender, recipients = "", list[str]()
        while line := self.rfile.readline():
            command = line.decode().rstrip("\r\n")
            verb = command.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self._reply("250-receiver", "250-AUTH PLAIN", "250 8BITMIME")
            elif verb == "AUTH":
                _, user, password = base64.b64decode(command.split()[2]).decode().split("\0")
                box.logins.append((user, password))
                self._reply("535 5.7.8 Authentication credentials invalid" if box.reject_auth else "235 ok")
            elif verb == "MAIL":
                sender, recipients = command.split(":", 1)[1].split()[0].strip("<>"), []
                self._reply("250 ok")
            elif verb == "RCPT":
                recipients.append(command.split(":", 1)[1].strip().strip("<>"))
                self._reply("250 ok")
            elif verb == "DATA":
                self._reply("354 go ahead")
                data = b""
                while (chunk := self.rfile.readline()) != b".\r\n":
                    data += chunk
                box.envelopes.append((sender, recipients, message_from_bytes(data)))
                self._reply("250 queued")
            elif verb == "QUIT":
                self._reply("221 bye")
                return
            else:
                self._reply("250 ok")


class _SMTPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SMTPHandler)
        self.mailbox = Mailbox()


@pytest.fixture
def smtp() -> Iterator[_SMTPServer]:
    server = _SMTPServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


# --- a tiny HTTP receiver -------------------------------------------------------------------------


@dataclass
class Inbox:
    status: int = 204
    posts: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)


class _HookHandler(BaseHTTPRequestHandler):
    server: _HookServer

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.inbox.posts.append((self.path, dict(self.headers.items()), body))
        self.send_response(self.server.inbox.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _HookServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _HookHandler)
        self.inbox = Inbox()


@pytest.fixture
def hook() -> Iterator[_HookServer]:
    server = _HookServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy from the environment would route the loopback receivers through it.
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def settings(
    smtp: _SMTPServer | None = None, hook: _HookServer | None = None, on: list[str] | None = None
) -> NotificationsConfig:
    data: dict[str, Any] = {}
    if on is not None:
        data["on"] = on
    if smtp is not None:
        data["email"] = {
            "host": "127.0.0.1",
            "port": smtp.server_address[1],
            "starttls": False,
            "username": "smartsync",
            "password": PASSWORD,
            "from": "smartsync@school.example",
            "to": ["it@school.example", "head@school.example"],
            "timeout_seconds": 5,
        }
    if hook is not None:
        data["webhook"] = {
            "url": f"http://127.0.0.1:{hook.server_address[1]}/hooks/{HOOK_TOKEN}",
            "headers": {"Authorization": HEADER_SECRET},
            "timeout_seconds": 5,
        }
    return NotificationsConfig.model_validate(data)


def test_failed_run_sends_one_email_with_the_summary(smtp: _SMTPServer) -> None:
    assert notify(settings(smtp=smtp), FAILED) == []
    box = smtp.mailbox
    assert box.logins == [("smartsync", PASSWORD)]
    assert len(box.envelopes) == 1
    sender, recipients, mail = box.envelopes[0]
    assert sender == "smartsync@school.example"
    assert recipients == ["it@school.example", "head@school.example"]
    assert mail["Subject"] == "smartsync Northfield Academy: run failed"
    body = mail.get_payload(decode=True)
    assert isinstance(body, bytes)
    text = body.decode()
    assert "20261126T040002Z-3f2a" in text
    assert "groups_created: 2" in text and "members_added: 40" in text
    assert "members_removed" not in text  # zero counts are left out
    assert "Graph answered 503" in text
    assert "smartsync log --run 20261126T040002Z-3f2a" in text
    assert PASSWORD not in mail.as_string()


def test_failed_run_posts_one_webhook_with_the_documented_body(hook: _HookServer) -> None:
    assert notify(settings(hook=hook), FAILED) == []
    [(path, headers, body)] = hook.inbox.posts
    assert path == f"/hooks/{HOOK_TOKEN}"
    assert headers["Authorization"] == HEADER_SECRET
    assert headers["Content-Type"] == "application/json"
    assert {k: body[k] for k in ("tool", "school", "status", "summary", "message", "run")} == {
        "tool": "smartsync",
        "school": "Northfield Academy",
        "status": "failed",
        "summary": {"groups_created": 2, "members_added": 40, "members_removed": 0},
        "message": "Graph answered 503 for 3 minutes; 12 changes were not applied.",
        "run": "20261126T040002Z-3f2a",
    }
    assert body["text"].startswith("smartsync Northfield Academy: run failed")


def test_successful_run_sends_nothing_unless_ok_is_asked_for(smtp: _SMTPServer, hook: _HookServer) -> None:
    assert notify(settings(smtp, hook), OK) == []
    assert smtp.mailbox.connections == 0 and hook.inbox.posts == []

    assert notify(settings(smtp, hook, on=["ok", "failed"]), OK) == []
    assert len(smtp.mailbox.envelopes) == 1 and len(hook.inbox.posts) == 1
    assert smtp.mailbox.envelopes[0][2]["Subject"] == "smartsync Northfield Academy: run succeeded"


def test_only_the_statuses_listed_in_on_are_sent(hook: _HookServer) -> None:
    config = settings(hook=hook, on=["refused"])
    assert notify(config, FAILED) == []
    refused = RunOutcome("refused", "NFA", {}, "37 deletions, 20 allowed", "r2")
    assert notify(config, refused) == []
    assert [post[2]["status"] for post in hook.inbox.posts] == ["refused"]


def test_expiring_secret_is_reported_even_after_a_good_run(hook: _HookServer) -> None:
    expiring = RunOutcome(
        "ok", "NFA", {}, "", "r3", expiring=['client secret "smartsync" expires 2026-12-10 (14 days)']
    )
    assert notify(settings(hook=hook), expiring) == []
    [(_, _, body)] = hook.inbox.posts
    assert body["expiring"] == ['client secret "smartsync" expires 2026-12-10 (14 days)']
    assert "credentials expire soon" in body["text"]
    assert notify(settings(hook=hook, on=["failed"]), expiring) == []
    assert len(hook.inbox.posts) == 1


def test_no_config_means_no_notification() -> None:
    assert notify(None, FAILED) == []


def test_rejected_login_is_a_warning_without_the_password(
    smtp: _SMTPServer, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    smtp.mailbox.reject_auth = True
    caplog.set_level(logging.DEBUG)
    warnings = notify(settings(smtp=smtp), FAILED)
    assert len(warnings) == 1
    assert "535" in warnings[0] and "it@school.example" in warnings[0]
    assert "notifications.email" in warnings[0]
    assert smtp.mailbox.envelopes == []
    captured = capsys.readouterr()
    for text in (*warnings, caplog.text, captured.out, captured.err):
        assert PASSWORD not in text


def test_unreachable_smtp_server_is_a_warning(hook: _HookServer) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    config = NotificationsConfig.model_validate(
        {
            "email": {
                "host": "127.0.0.1",
                "port": closed_port,
                "starttls": False,
                "from": "smartsync@school.example",
                "to": ["it@school.example"],
                "password": PASSWORD,
                "username": "u",
                "timeout_seconds": 2,
            },
            "webhook": {"url": f"http://127.0.0.1:{hook.server_address[1]}/x"},
        }
    )
    warnings = notify(config, FAILED)
    assert len(warnings) == 1 and f"127.0.0.1:{closed_port}" in warnings[0]
    assert PASSWORD not in warnings[0]
    # The webhook is still tried when e-mail fails.
    assert len(hook.inbox.posts) == 1


def test_webhook_error_status_is_a_warning_without_url_or_header_secrets(hook: _HookServer) -> None:
    hook.inbox.status = 500
    warnings = notify(settings(hook=hook), FAILED)
    assert len(warnings) == 1
    assert "HTTP 500" in warnings[0] and "http://127.0.0.1" in warnings[0]
    assert HOOK_TOKEN not in warnings[0] and HEADER_SECRET not in warnings[0]


def test_config_reprs_hide_the_secrets(smtp: _SMTPServer, hook: _HookServer) -> None:
    config = settings(smtp, hook)
    for text in (repr(config), str(config), config.model_dump_json()):
        assert PASSWORD not in text and HOOK_TOKEN not in text and HEADER_SECRET not in text


BASE_CONFIG = """
tenant: {tenant_id: t, client_id: c, client_secret: "${SMARTSYNC_CLIENT_SECRET}"}
source: {path: export}
school: {code: NFA, name: Northfield Academy}
"""


def test_yaml_notifications_section_with_bare_on_key_and_env_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SMARTSYNC_CLIENT_SECRET", "x")
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    text = BASE_CONFIG + (
        "notifications:\n"
        "  on: [failed, refused]\n"
        "  email: {host: smtp.school.example, port: 587, starttls: true, username: smartsync,\n"
        "          password: '${SMTP_PASSWORD}', from: smartsync@school.example, to: [it@school.example]}\n"
    )
    config = parse_config(yaml.safe_load(text))
    assert config.notifications is not None
    assert config.notifications.on == ["failed", "refused"]
    email = config.notifications.email
    assert email is not None and email.password is not None
    assert email.password.get_secret_value() == PASSWORD
    assert email.sender == "smartsync@school.example"
    assert email.effective_port == 587 and email.use_starttls


def test_tls_mode_defaults_follow_ssl() -> None:
    data = {"email": {"host": "h", "ssl": True, "from": "a@b.c", "to": ["x@y.z"]}}
    email = NotificationsConfig.model_validate(data).email
    assert email is not None and not email.use_starttls and email.effective_port == 465


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("{on: [failed]}", "give notifications.email, notifications.webhook or both"),
        (
            "{on: [sometimes], webhook: {url: 'https://h/x'}}",
            "notifications.on[0]: 'sometimes' is not one of",
        ),
        ("{webhook: {url: 'ftp://h/x'}}", "webhook url must start with https://"),
        (
            "{email: {host: h, ssl: true, starttls: true, from: a@b.c, to: [x@y.z]}}",
            "give ssl: true (usually port 465) or starttls: true (port 587), not both",
        ),
        (
            "{email: {host: h, from: a@b.c, to: [x@y.z], pasword: p}}",
            "notifications.email.pasword: unknown key",
        ),
    ],
)
def test_invalid_notifications_config_names_the_key(
    section: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMARTSYNC_CLIENT_SECRET", "x")
    with pytest.raises(ConfigError) as caught:
        parse_config(yaml.safe_load(BASE_CONFIG + f"notifications: {section}\n"))
    assert expected in str(caught.value)


def test_the_report_page_is_linked_and_attached_only_when_asked(
    smtp: _SMTPServer, hook: _HookServer, tmp_path: Path
) -> None:
    page = tmp_path / "20261126T040002Z-3f2a.html"
    page.write_text("<!DOCTYPE html><title>report</title>", encoding="utf-8")
    event = replace(FAILED, report_page=str(page))
    assert notify(settings(smtp=smtp, hook=hook), event) == []
    [(_sender, _to, linked)] = smtp.mailbox.envelopes
    assert not linked.is_multipart()
    assert f"The report page of this run, to open in a browser: {page}" in str(
        linked.get_payload(decode=True)
    )
    [(_path, _headers, body)] = hook.inbox.posts
    assert body["report_page"] == str(page)

    plain = settings(smtp=smtp)
    assert plain.email is not None
    email = plain.email.model_copy(update={"attach_report": True})
    assert notify(plain.model_copy(update={"email": email}), event) == []
    mail = smtp.mailbox.envelopes[-1][2]
    [attachment] = [part for part in mail.walk() if part.get_filename()]
    assert attachment.get_filename() == page.name and attachment.get_content_type() == "text/html"
    assert attachment.get_payload(decode=True) == page.read_bytes()
