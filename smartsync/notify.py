"""Notifications after a run: e-mail over SMTP and/or a JSON webhook.

A sysadmin should hear about a failed run, a partial failure, a safety refusal or a client secret
about to expire without reading cron mail. `notify` decides from `notifications.on` whether this
run is worth a message, sends it on every configured channel and returns warnings for channels that
failed: a notification that cannot be delivered never fails the run. The webhook goes through its
own httpx client (`httpio.edge_client`: the same trust and proxy rules as Graph, but not the Graph
client's connection pool or retries), so that a broken Graph connection cannot silence the alarm
about it.

No secret reaches a warning: the SMTP password, the webhook URL (which, for Teams and Slack, is
itself a credential) and header values are removed from every message this module returns.
"""

from __future__ import annotations

import smtplib
import ssl
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import httpx

from smartsync.config import EmailNotificationConfig, NotificationsConfig, WebhookNotificationConfig
from smartsync.errors import ConfigError
from smartsync.httpio import edge_client

_STATUS_WORDS = {
    "ok": "succeeded",
    "partial": "finished with failed changes",
    "failed": "failed",
    "refused": "was refused by a safety limit",
}


@dataclass(frozen=True)
class RunOutcome:
    """What a run ended with, as far as a person being notified needs to know."""

    status: str  # ok | partial | failed | refused
    school: str
    summary: Mapping[str, int]
    message: str
    run_id: str
    expiring: Sequence[str] = field(default_factory=tuple)  # e.g. 'client secret "x" expires 2026-12-10'
    report_page: str = ""  # the run's HTML report page (journal.html_reports), if one was written


def should_notify(config: NotificationsConfig | None, event: RunOutcome) -> bool:
    if config is None:
        return False
    return event.status in config.on or bool(event.expiring and "expiring" in config.on)


def subject_line(event: RunOutcome) -> str:
    words = _STATUS_WORDS.get(event.status, event.status)
    subject = f"smartsync {event.school}: run {words}"
    if event.expiring:
        subject += " - credentials expire soon"
    return subject


def message_text(event: RunOutcome) -> str:
    lines = [
        f"smartsync run {event.run_id} for {event.school}: {_STATUS_WORDS.get(event.status, event.status)}."
    ]
    if event.message:
        lines += ["", event.message]
    counts = {name: count for name, count in event.summary.items() if count}
    lines += ["", "Summary:" if counts else "Summary: no changes."]
    lines += [f"  {name}: {count}" for name, count in counts.items()]
    if event.expiring:
        lines += ["", "Expiring credentials (renew them before the date, or runs will fail):"]
        lines += [f"  - {item}" for item in event.expiring]
    lines += ["", f"Every change of this run: smartsync log --run {event.run_id}"]
    if event.report_page:
        lines += [f"The report page of this run, to open in a browser: {event.report_page}"]
    return "\n".join(lines) + "\n"


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _smtp_reason(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = (
            exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        )
        return f"the server answered {exc.smtp_code} {reply}".strip()
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return f"the server refused the recipients {', '.join(exc.recipients)}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024  # larger pages are linked, not attached (mail servers refuse them)


def _attach_report(message: EmailMessage, config: EmailNotificationConfig, event: RunOutcome) -> None:
    if not (config.attach_report and event.report_page):
        return
    page = Path(event.report_page)
    try:
        if page.stat().st_size > MAX_ATTACHMENT_BYTES:
            return
        data = page.read_bytes()
    except OSError:
        return
    message.add_attachment(data, maintype="text", subtype="html", filename=page.name)


def send_email(config: EmailNotificationConfig, event: RunOutcome) -> str | None:
    """Send one e-mail; return a warning instead of raising when it cannot be delivered."""
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = ", ".join(config.to)
    message["Subject"] = subject_line(event)
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=config.sender.rpartition("@")[2] or None)
    message.set_content(message_text(event))
    _attach_report(message, config, event)
    password = config.password.get_secret_value() if config.password is not None else ""
    port = config.effective_port
    try:
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if config.ssl:
            client = smtplib.SMTP_SSL(config.host, port, timeout=config.timeout_seconds, context=context)
        else:
            client = smtplib.SMTP(config.host, port, timeout=config.timeout_seconds)
        with client:
            if config.use_starttls:
                client.starttls(context=context)
            if config.username:
                client.login(config.username, password)
            client.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        reason = _scrub(_smtp_reason(exc), [password])
        return (
            f"E-mail notification to {', '.join(config.to)} via {config.host}:{port} was not sent: {reason}. "
            "Check notifications.email in the config."
        )
    return None


def webhook_body(event: RunOutcome) -> dict[str, object]:
    return {
        "tool": "smartsync",
        "school": event.school,
        "status": event.status,
        "summary": dict(event.summary),
        "message": event.message,
        "run": event.run_id,
        "expiring": list(event.expiring),
        "report_page": event.report_page or None,
        # Slack and Teams incoming webhooks show `text`, so the same body works there unchanged.
        "text": subject_line(event) + (f": {event.message}" if event.message else ""),
    }


def send_webhook(config: WebhookNotificationConfig, event: RunOutcome) -> str | None:
    """POST the outcome as JSON; return a warning instead of raising when it cannot be delivered."""
    url = config.url.get_secret_value()
    parts = urllib.parse.urlsplit(url)
    shown = f"{parts.scheme}://{parts.hostname or '?'}"
    secrets = [url, parts.path, parts.query, *(value.get_secret_value() for value in config.headers.values())]
    headers = {name: value.get_secret_value() for name, value in config.headers.items()}
    try:
        with edge_client(
            ca_bundle=config.ca_bundle,
            setting="notifications.webhook.ca_bundle",
            timeout_seconds=config.timeout_seconds,
        ) as http:
            response = http.post(url, json=webhook_body(event), headers=headers)
    except ConfigError as exc:
        reason = str(exc)
    except httpx.HTTPError as exc:
        reason = _scrub(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, secrets)
    except ValueError as exc:  # a URL httpx cannot send to
        reason = _scrub(f"{type(exc).__name__}: {exc}", secrets)
    else:
        if response.is_success:
            return None
        reason = f"the endpoint answered HTTP {response.status_code}"
        if response.is_redirect:
            reason += " (a redirect: smartsync does not follow them; give the final URL)"
    return (
        f"Webhook notification to {shown} was not sent: {reason}. Check notifications.webhook in the config."
    )


def notify(config: NotificationsConfig | None, event: RunOutcome) -> list[str]:
    """Send the notifications this outcome calls for; return a warning per channel that failed."""
    if config is None or not should_notify(config, event):
        return []
    warnings: list[str] = []
    if config.email is not None:
        warning = send_email(config.email, event)
        if warning:
            warnings.append(warning)
    if config.webhook is not None:
        warning = send_webhook(config.webhook, event)
        if warning:
            warnings.append(warning)
    return warnings


__all__ = ["RunOutcome", "message_text", "notify", "should_notify", "subject_line", "webhook_body"]
