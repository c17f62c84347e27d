from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from kithost.kit.schemas import Schema
from kithost.models.analytics_settings import MIN_RETENTION_DAYS


class EndUserDeletion(Schema):
    end_user: Annotated[str, StringConstraints(pattern=r"^[ua]:", min_length=3, max_length=210)]
    """The ``u:…`` (identified) or ``a:…`` (anonymous) id sessions answer with; a pseudonym
    (``a:h_…``, as exports, conversations and the audit log show anonymous visitors) is
    refused (:func:`~kithost.analytics.retention.service.delete_end_user`)."""


class EndUserDeleted(Schema):
    end_user: str
    removed: dict[str, int]


class AnalyticsSettingsOut(Schema):
    retention_days: int


class AnalyticsSettingsUpdate(Schema):
    retention_days: int = Field(ge=MIN_RETENTION_DAYS, le=3650)
