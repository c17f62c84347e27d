"""Small shared helpers that belong to no domain."""
