"""Invitation emails, sent by a worker when ``KITHOST_SMTP_URL`` is set.

``KITHOST_SMTP_URL`` is ``smtp://[user:password@]host[:port]`` (add ``?starttls=true`` to
upgrade the connection) or ``smtps://…`` for TLS from the start.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from celery import shared_task

from kithost.settings import get_settings


@shared_task(
    name="kithost.invitations.send_email",
    autoretry_for=(OSError, smtplib.SMTPException),
    retry_backoff=True,
    max_retries=5,
)
def send_invitation_email(to: str, tenant_name: str, role: str, accept_url: str) -> None:
    settings = get_settings()
    if settings.smtp_url is None:
        return
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = f"You are invited to {tenant_name} on Kithost"
    message.set_content(
        f"You have been invited to join {tenant_name} as {role}.\n\n"
        f"Accept the invitation: {accept_url}\n\n"
        "The link works once and expires; ignore this email if you did not expect it.\n"
    )
    _send(settings.smtp_url, message)


def _send(url: str, message: EmailMessage) -> None:
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    smtp_class = smtplib.SMTP_SSL if parts.scheme == "smtps" else smtplib.SMTP
    with smtp_class(
        host, parts.port or (465 if parts.scheme == "smtps" else 25), timeout=30
    ) as smtp:
        if parse_qs(parts.query).get("starttls") == ["true"]:
            smtp.starttls()
        if parts.username:
            smtp.login(unquote(parts.username), unquote(parts.password or ""))
        smtp.send_message(message)
