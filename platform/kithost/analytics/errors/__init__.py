"""Client error groups: occurrences counted at ingestion, listed and resolved by tenants."""
