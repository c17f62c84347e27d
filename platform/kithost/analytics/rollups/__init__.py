"""Hourly and daily rollups recomputed from raw events (beat, every minute; the CLI)."""
