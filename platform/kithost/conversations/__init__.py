"""Conversations as the tenant's staff read them: the self-hosted chats' threads, searched,
read (every read audited), exported (``conversations:read``: owners and admins; editors too
where the tenant lets them, ``auth.roles.scopes_of``; viewers never), reviewed and deleted
(``conversations:write``: owners and admins only; reading a transcript is not leave to
change or destroy it)."""
