"""Reports out: series, funnel and latency from the rollups, and the CSV exports."""
