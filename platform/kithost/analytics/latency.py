"""Latency histograms: counts per bucket of a fixed geometric scale, so that rollups of
different hours and widgets merge by adding, and percentiles come from the merged counts
(within one bucket's width, about 12%)."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

BOUNDS_MS: tuple[int, ...] = tuple(
    sorted({round(10 * 1.12**i) for i in range(91)})  # 10 ms … ~300 s
)
"""Upper bounds (inclusive) of the buckets; one more bucket holds everything above."""
SIZE = len(BOUNDS_MS) + 1


def empty() -> list[int]:
    return [0] * SIZE


def histogram(values: Iterable[int]) -> list[int]:
    counts = empty()
    for value in values:
        counts[bisect.bisect_left(BOUNDS_MS, value)] += 1
    return counts


def add(total: list[int], counts: Sequence[int]) -> None:
    """Add ``counts`` into ``total``, in place."""
    for i, n in enumerate(counts):
        total[i] += n


def highest(counts: Sequence[int], other: Sequence[int]) -> list[int]:
    """Bucket by bucket, the higher of the two counts."""
    return [max(a, b) for a, b in zip(counts, other, strict=True)]


def merge(histograms: Iterable[Sequence[int]]) -> list[int]:
    total = empty()
    for counts in histograms:
        add(total, counts)
    return total


def percentile(counts: Sequence[int], q: float) -> int | None:
    """The ``q`` quantile (0 < q ≤ 1) as its bucket's upper bound; None without values."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        seen += n
        if seen >= rank:
            return BOUNDS_MS[min(i, len(BOUNDS_MS) - 1)]
    return BOUNDS_MS[-1]
