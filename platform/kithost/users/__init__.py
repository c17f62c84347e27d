"""Dashboard user accounts."""
