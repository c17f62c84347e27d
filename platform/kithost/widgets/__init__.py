"""Widgets: a tenant's ChatKit configuration, its versions and allowed origins."""
