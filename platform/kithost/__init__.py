"""Kithost: a multi-tenant hosting platform for OpenAI ChatKit."""

__version__ = "0.1.0"
