"""Who is calling: passwords, scopes (and, later, sessions and OAuth tokens)."""
