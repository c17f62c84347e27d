"""With ``KITHOST_SMTP_URL`` set, a worker emails the invitation link (real SMTP on loopback)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message

import httpx2
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session
from sqlalchemy.ext.asyncio import AsyncConnection

from kithost.models import Role
from kithost.settings import Settings
from tests.conftest import create_test_app
from tests.factories import login, make_member, make_tenant
from tests.workers import TIMEOUT, start_worker, stop_worker

pytestmark = pytest.mark.worker


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, _server: object, _session: Session, envelope: Envelope) -> str:  # noqa: N802
        assert isinstance(envelope.content, bytes)
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[str, Inbox]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield f"smtp://127.0.0.1:{port}", inbox
    controller.stop()


async def test_the_invitation_link_is_emailed(
    settings: Settings, connection: AsyncConnection, smtp: tuple[str, Inbox]
) -> None:
    smtp_url, inbox = smtp
    app = create_test_app(settings, connection, smtp_url=smtp_url)
    worker = start_worker(settings, KITHOST_SMTP_URL=smtp_url)
    try:
        async with app.state.sessionmaker() as db:
            tenant = await make_tenant(db, "mailers")
            owner = await login(app, db, await make_member(db, tenant, Role.owner))
            await db.commit()
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.post(
                "/api/v1/tenants/mailers/invitations",
                json={"email": "New.Person@example.test", "role": "editor"},
                headers=owner.headers,
            )
        assert response.status_code == 201, response.text
        accept_url = response.json()["accept_url"]
        for _ in range(TIMEOUT * 10):
            if inbox.messages:
                break
            await asyncio.sleep(0.1)
        [message] = inbox.messages
        assert message["To"] == "new.person@example.test"
        assert message["Subject"] == "You are invited to Mailers on Kithost"
        body = message.get_payload(decode=True)
        assert isinstance(body, bytes)
        assert accept_url in body.decode()
        assert "as editor" in body.decode()
    finally:
        stop_worker(worker)
