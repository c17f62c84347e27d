from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, AnyHttpUrl, Field
from pydantic_core import PydanticCustomError

from kithost.kit.schemas import Schema
from kithost.models import DeliveryStatus


class EventType(StrEnum):
    """What an endpoint may subscribe to; each event's body is ``{"type", "timestamp",
    "data"}``, with ``data``:

    - ``conversation.started``: a new thread's first user message: ``thread_id``,
      ``widget_id``, ``end_user`` (a verified ``u:…``; null for anonymous visitors),
      ``item_id``, ``created_at``, ``role`` (``user``), ``text``;
    - ``conversation.message`` (one per stored message: high volume): the same fields, for
      every user and assistant message (``role``: ``user`` or ``assistant``);
    - ``conversation.idle``: a thread without activity for the endpoint's
      ``idle_minutes``, once per idle period: the conversation as the REST API's transcript
      shows it (``id``, ``widget_id``, ``end_user``, …, ``items``), with its latest items
      only (100 at most, 256 KiB of JSON in all); ``truncated``, ``items_total`` and
      ``transcript_path`` (the ``GET`` reading every item, a page at a time) say what was
      left out;
    - ``feedback.created``: ``thread_id``, ``item_ids``, ``kind`` (positive, negative);
    - ``client_error.new_group``: a client error unlike any before in the widget (at most
      100 a widget's hour; the distinct errors beyond are counted into that hour's overflow
      group, announced by none): ``group_id``, ``widget_id``, ``kind``, ``message``
      (normalised), ``frame``, ``hint``, ``first_seen``, ``count``;
    - ``widget.published``: ``widget_id``, ``name``, ``version`` (its number).
    """

    conversation_started = "conversation.started"
    conversation_message = "conversation.message"
    conversation_idle = "conversation.idle"
    feedback_created = "feedback.created"
    client_error_new_group = "client_error.new_group"
    widget_published = "widget.published"


IDLE_MINUTES = "`conversation.idle`: minutes without activity before a thread is announced."
URL_MAX_LENGTH = 2048
"""As the column holds (``models.webhook``)."""


def _storable(url: AnyHttpUrl) -> AnyHttpUrl:
    """``url`` unless it names a user or password, or is longer than its column once
    normalised (percent-encoding lengthens a URL: its input's length proves nothing).
    Credentials in a URL end up wherever the URL is shown (the audit log, members' screens);
    the receiver checks the signature made with the endpoint's secret instead."""
    if url.username is not None or url.password is not None:
        raise PydanticCustomError(
            "url_userinfo",
            "a webhook URL carries no user or password: the receiver checks the signature",
        )
    if len(str(url)) > URL_MAX_LENGTH:
        raise PydanticCustomError(
            "url_too_long",
            "URL should have at most {max_length} characters",
            {"max_length": URL_MAX_LENGTH},
        )
    return url


WebhookUrl = Annotated[AnyHttpUrl, AfterValidator(_storable)]
"""Where an endpoint's events go: http(s), no credentials, at most ``URL_MAX_LENGTH``."""


class EndpointCreate(Schema):
    url: WebhookUrl
    description: str = Field(default="", max_length=500)
    events: list[EventType] = Field(min_length=1)
    idle_minutes: int = Field(default=30, ge=1, le=10_080, description=IDLE_MINUTES)


class EndpointUpdate(Schema):
    url: WebhookUrl | None = None
    description: str | None = Field(default=None, max_length=500)
    events: list[EventType] | None = Field(default=None, min_length=1)
    idle_minutes: int | None = Field(default=None, ge=1, le=10_080, description=IDLE_MINUTES)
    enabled: bool | None = None


class Endpoint(Schema):
    id: uuid.UUID
    url: str
    """In full: only those holding the webhooks scopes see it (the audit log shows its
    origin alone)."""
    description: str
    events: list[str]
    enabled: bool
    idle_minutes: int
    failing_since: datetime | None
    slow_since: datetime | None
    """Since when its attempts have taken longer than 2 s (null once one is faster): while
    slow, the endpoint takes one delivery at a time, the next within seconds of the one
    under way ending, the others waiting their turn; and the tenant's slow endpoints take
    one at a time all together (``waiting_turn``)."""
    next_attempt_at: datetime | None
    """While the endpoint fails, when its next delivery is attempted (one at a time, after a
    rest as long as it has been failing: 30 s to an hour); a test or replay is tried at once.
    While an attempt holds a failing or slow endpoint, its deadline (a slow endpoint's next
    attempt goes sooner if it ends sooner). Null while it waits its turn (``waiting_turn``)."""
    created_at: datetime
    waiting_turn: bool = Field(
        default=False,
        description="Slow (`slow_since`), neither held nor resting itself (`next_attempt_at` "
        "null or past), and an attempt to another of the tenant's slow endpoints is under way: "
        "they take one attempt at a time all together, so this endpoint's deliveries, if any, "
        "wait, unsent, until that attempt ends (within 10 s).",
    )


class EndpointCreated(Schema):
    """The endpoint and its signing secret: shown this once."""

    endpoint: Endpoint
    secret: str


class SecretRotated(Schema):
    """The new signing secret: shown this once."""

    secret: str
    old_secret_until: datetime
    """Until then deliveries are signed with the old secret too."""


class Delivery(Schema):
    id: uuid.UUID
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    response_status: int | None
    response_snippet: str | None
    latency_ms: int | None
    created_at: datetime
    payload: dict[str, Any]


class DeliveryPage(Schema):
    deliveries: list[Delivery]
    next_cursor: str | None = Field(
        description="Pass it as `cursor` for the next page; null on the last page."
    )
