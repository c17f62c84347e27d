"""Secrets kept encrypted at rest: tenants' OpenAI keys, widgets' identity secrets, and the
re-encryption that completes a rotation of ``KITHOST_SECRET_KEY``."""
