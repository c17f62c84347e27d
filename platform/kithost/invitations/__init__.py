"""Invitations to join a tenant."""
