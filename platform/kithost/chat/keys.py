"""The OpenAI keys answers are made with, read through a short-lived in-process cache."""

from __future__ import annotations

import time
import uuid

from kithost.db import Sessionmaker, session_scope
from kithost.kit.crypto import SecretBox
from kithost.models import Tenant
from kithost.secrets.service import tenant_openai_key
from kithost.settings import Settings

KEY_SECONDS = 2.0
"""How long a key is reused: a changed key is used within this (as a published config)."""


class ApiKeys:
    """The tenant's own OpenAI key, else the deployment's default (``KITHOST_OPENAI_API_KEY``)."""

    def __init__(self, settings: Settings, box: SecretBox, sessionmaker: Sessionmaker) -> None:
        self.default = settings.openai_api_key
        self.box = box
        self.sessionmaker = sessionmaker
        self._keys: dict[uuid.UUID, tuple[float, str | None]] = {}

    async def get(self, tenant_id: uuid.UUID) -> str | None:
        now = time.monotonic()
        cached = self._keys.get(tenant_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with session_scope(self.sessionmaker) as session:
            tenant = await session.get(Tenant, tenant_id)
        key = None if tenant is None else tenant_openai_key(self.box, tenant)
        if key is None and self.default is not None:
            key = self.default.get_secret_value()
        self._keys[tenant_id] = (now + KEY_SECONDS, key)
        return key
