"""Conversations as the tenant's staff read them: the self-hosted chats' threads, searched,
read (every read audited), exported and deleted. Owners and admins (``conversations:read``);
editors too where the tenant lets them (``auth.roles.scopes_of``); viewers never."""
