"""The messages' words as a view the app's role searches through its index (PostgreSQL)

Revision ID: bf5a3a2ac457
Revises: 5f0c3a7e21b4
Create Date: 2026-12-05 22:20:00.000000

Row-level security keeps PostgreSQL from using ``ix_chat_items_search`` for the app's role:
the policy is checked first, and ``@@`` is not leakproof, so it may not run before it as an
index condition; each of the tenant's messages was parsed instead (1.1 s for a word in none
of 200,000 messages). ``chat_item_words`` is the same rows with the indexed expression as
``words``. A view runs as its owner, whom the policy does not bind (it is not forced), so the
view repeats the policy's condition itself: the app's role still sees only its tenant's
messages through it. Nothing on SQLite (FTS5 there).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "bf5a3a2ac457"
down_revision: str | None = "5f0c3a7e21b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VIEW = (
    "CREATE VIEW chat_item_words AS SELECT thread_id, tenant_id, kind, jsonb_to_tsvector("
    "'simple'::regconfig, jsonb_path_query_array(payload, '$.content[*].text'::jsonpath),"
    " '[\"string\"]'::jsonb) AS words FROM chat_items"
    " WHERE tenant_id = NULLIF(current_setting('kithost.tenant_id', true), '')::uuid"
    " OR current_setting('kithost.rls_bypass', true) = 'on'"
)
"""``words`` is ``ix_chat_items_search``'s expression (migration ``c3f1a9d27e64``); the
condition is the ``tenant_isolation`` policy's (migration ``5f0c3a7e21b4``)."""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(VIEW)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP VIEW chat_item_words")
