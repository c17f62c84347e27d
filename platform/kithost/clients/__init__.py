"""API clients: the OAuth 2.0 credentials of tenants' backends."""
