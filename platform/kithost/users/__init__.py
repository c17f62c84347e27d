"""Dashboard user accounts, and signing in to the dashboard (the ``/auth`` routes)."""
