"""Memberships: users' roles in tenants."""
