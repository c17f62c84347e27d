"""Events in: the visitor route (no database) and the ingest task storing batches once."""
