"""Visitor endpoints: the public widget config (and later the loader, sessions, events)."""
