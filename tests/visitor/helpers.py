"""Published widgets to ask the config endpoint about, what its refusals look like, a clock
the tests move, and ``kithost serve`` in a subprocess."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx2
from sqlalchemy.ext.asyncio import AsyncSession

from kithost.auth.principals import CLI
from kithost.kit.origins import normalize_pattern
from kithost.models import AllowedOrigin, Widget
from kithost.settings import Settings
from kithost.widgets.config import WidgetConfig
from kithost.widgets.service import create_widget, publish_draft
from tests.conftest import free_port
from tests.factories import make_tenant

ORIGIN = "https://shop.example.com"


async def make_widget(
    db: AsyncSession,
    origins: Sequence[str | tuple[str, str | None]] = (ORIGIN,),
    config: WidgetConfig | None = None,
) -> Widget:
    """A widget allowing ``origins`` (patterns, or pattern and domain key pairs), with
    ``config`` published as version 1 unless it is None."""
    tenant = await make_tenant(db)
    widget = await create_widget(db, CLI, tenant, name="Support")
    for entry in origins:
        pattern, domain_key = (entry, None) if isinstance(entry, str) else entry
        db.add(
            AllowedOrigin(
                tenant_id=tenant.id,
                widget_id=widget.id,
                origin=normalize_pattern(pattern),
                domain_key=domain_key,
            )
        )
    await db.flush()
    if config is not None:
        await publish(db, widget, config)
    return widget


async def publish(db: AsyncSession, widget: Widget, config: WidgetConfig) -> int:
    """Publish ``config`` as the widget's next version, as the publish route does."""
    widget.draft = config.model_dump(mode="json")
    await publish_draft(db, CLI, widget, published_by=None)
    await db.flush()
    assert widget.published_version is not None
    return widget.published_version


def config_url(widget: Widget | str) -> str:
    public_key = widget if isinstance(widget, str) else widget.public_key
    return f"/v1/embed/{public_key}/config"


def assert_refused(response: httpx2.Response, status: int, code: str) -> None:
    """A problem document without CORS headers that no cache may keep."""
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert "access-control-allow-origin" not in response.headers
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["vary"] == "Origin"


class Server:
    """``kithost serve`` in a subprocess, configured like ``settings`` and ``env_vars``."""

    def __init__(
        self, settings: Settings, log_path: Path, port: int | None = None, **env_vars: str
    ) -> None:
        self.url = f"http://127.0.0.1:{port or free_port()}"
        env = {
            **os.environ,
            "KITHOST_DATA_DIR": str(settings.data_dir),
            "KITHOST_DATABASE_URL": settings.database,
            "KITHOST_SECRET_KEY": "test-secret-key",
            "KITHOST_PORT": self.url.rsplit(":", 1)[1],
            "KITHOST_PUBLIC_URL": self.url,
            **env_vars,
        }
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kithost", "serve"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def wait_ready(self, client: httpx2.AsyncClient) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log_path.read_text()
            try:
                if (await client.get(f"{self.url}/healthz")).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            await asyncio.sleep(0.1)
        raise AssertionError(f"kithost serve did not start:\n{self.log_path.read_text()}")

    async def config(self, client: httpx2.AsyncClient, widget: Widget) -> httpx2.Response:
        response = await client.get(self.url + config_url(widget), headers={"Origin": ORIGIN})
        assert response.status_code == 200, response.text
        return response

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


class Clock:
    """A clock the test moves, for the cache's revalidation interval."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now
