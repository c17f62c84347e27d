"""Retention and erasure: the hourly purge, end-user deletion, and the data owners
that take part in both."""
