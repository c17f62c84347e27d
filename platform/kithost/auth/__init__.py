"""Who is calling and what they may do: passwords, dashboard sessions, OIDC sign-in, OAuth
2.0 client credentials and the signing keys of their tokens, roles and scopes, and the
dependencies that put them in a route's signature."""
