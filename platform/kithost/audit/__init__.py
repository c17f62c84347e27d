"""The audit log: who did what, when, to which tenant's data."""
