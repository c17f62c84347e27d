from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    """What an API client's access token may do within its tenant."""

    widgets_read = "widgets:read"
    widgets_write = "widgets:write"
    sessions_mint = "sessions:mint"
    analytics_read = "analytics:read"
    members_read = "members:read"
    members_write = "members:write"
    clients_write = "clients:write"
    knowledge_read = "knowledge:read"
    knowledge_write = "knowledge:write"
    conversations_read = "conversations:read"
    conversations_write = "conversations:write"
    webhooks_write = "webhooks:write"
