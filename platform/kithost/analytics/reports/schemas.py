from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from kithost.analytics.reports.service import Interval, Metric
from kithost.kit.schemas import Instant, Schema


class RangeQuery(Schema):
    since: Instant | None = Field(None, description="Default: 7 days before `until`.")
    until: Instant | None = Field(None, description="Exclusive; default: now.")
    widget: uuid.UUID | None = Field(None, description="Only this widget; default: all.")


class SeriesQuery(RangeQuery):
    metric: Metric = Metric.loads
    interval: Interval = Interval.day
    tz: Annotated[str, StringConstraints(max_length=64)] = Field(
        "UTC", description="IANA time zone of the buckets, e.g. Europe/Paris."
    )


class ExportSeriesQuery(RangeQuery):
    interval: Interval = Interval.day
    tz: Annotated[str, StringConstraints(max_length=64)] = "UTC"


class TotalsQuery(RangeQuery):
    metric: Metric = Field(Metric.loads, description="A count (not a percentile, not `end_users`).")


class WidgetTotal(Schema):
    widget_id: uuid.UUID
    value: int


class WidgetTotals(Schema):
    metric: Metric
    since: datetime
    until: datetime
    widgets: list[WidgetTotal] = Field(
        description="Each widget with any in the range, most first; the others have none."
    )


class Point(Schema):
    start: datetime = Field(description="Bucket start, in the requested time zone.")
    value: float | None = Field(description="Null: no value (a percentile without responses).")


class Series(Schema):
    metric: Metric
    interval: Interval
    tz: str
    widget: uuid.UUID | None
    points: list[Point]


class Funnel(Schema):
    """Loads → launcher opens → conversations (threads with a user message) → engaged
    (threads with ≥ 3 messages) → threads with positive feedback, over the range."""

    since: datetime
    until: datetime
    loads: int
    opens: int
    conversations: int
    engaged: int
    positive_feedback: int


class Latency(Schema):
    """Response latency percentiles in milliseconds (histogram buckets, ±12%)."""

    since: datetime
    until: datetime
    responses: int
    first_token_p50: int | None
    first_token_p95: int | None
    total_p50: int | None
    total_p95: int | None
