"""Tenants: the customers whose widgets Kithost hosts."""
