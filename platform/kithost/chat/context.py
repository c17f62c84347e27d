"""The request context every ChatKit call carries: who asks, for which widget, from where.

Built by the endpoint from the verified session token and the request, frozen, and the
only thing the store and the server trust: every query is scoped by its tenant, widget and
end user.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from kithost.visitor.service import Published


@dataclass(frozen=True)
class ChatContext:
    widget: Published
    """The published widget (and the config it runs) the token was minted for."""
    end_user_id: str
    origin: str
    locale: str | None
    """The first language of ``Accept-Language`` (ChatKit sends its active locale)."""
    page_context: dict[str, Any] | None
    """What the loader's ``setContext`` passed (``X-Kithost-Context``), bounded in size."""
    received_at: float
    """``time.monotonic()`` when the request arrived: latencies are measured from here."""

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.widget.tenant_id

    @property
    def widget_id(self) -> uuid.UUID:
        return self.widget.widget_id
