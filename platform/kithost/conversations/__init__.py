"""Conversations as the tenant's staff read them: the self-hosted chats' threads, searched,
read (every read audited), exported and deleted. Owners and admins (``conversations:read``)."""
