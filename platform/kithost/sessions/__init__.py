"""Visitor sessions: who the end user is, and the short-lived credential ChatKit gets."""
