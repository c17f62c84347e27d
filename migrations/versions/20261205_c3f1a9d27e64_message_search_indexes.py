"""Indexes of the messages' text for the conversation search: FTS5 on SQLite, GIN on PostgreSQL

Revision ID: c3f1a9d27e64
Revises: 90692dc37290
Create Date: 2026-12-05 19:45:00.000000

PostgreSQL searches with its own full-text functions; on SQLite, ``chat_items_fts`` holds
each user and assistant message's text (the ``text`` of its ``content`` parts) under the
item's rowid, kept in step by triggers (cascading deletes fire them too). On PostgreSQL,
``ix_chat_items_search`` indexes the expression the search uses (the content parts' text as
a ``simple`` tsvector). Neither is a model: Alembic's comparison leaves them out.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c3f1a9d27e64"
down_revision: str | None = "90692dc37290"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TEXT = (
    "(SELECT group_concat(json_extract(value, '$.text'), ' ')"
    " FROM json_each({row}.payload, '$.content'))"
)
"""A message's text: its ``content`` parts' ``text``, space-separated."""
STATEMENTS = [
    "CREATE VIRTUAL TABLE chat_items_fts USING fts5("
    "text, tokenize = 'unicode61 remove_diacritics 0')",
    "INSERT INTO chat_items_fts (rowid, text) SELECT rowid, {chat_items_text} FROM chat_items"
    " WHERE kind IN ('user_message', 'assistant_message')",
    "CREATE TRIGGER chat_items_fts_insert AFTER INSERT ON chat_items"
    " WHEN new.kind IN ('user_message', 'assistant_message') BEGIN"
    " INSERT INTO chat_items_fts (rowid, text) VALUES (new.rowid, {new_text}); END",
    "CREATE TRIGGER chat_items_fts_update AFTER UPDATE OF kind, payload ON chat_items BEGIN"
    " DELETE FROM chat_items_fts WHERE rowid = old.rowid;"
    " INSERT INTO chat_items_fts (rowid, text) SELECT new.rowid, {new_text}"
    " WHERE new.kind IN ('user_message', 'assistant_message'); END",
    "CREATE TRIGGER chat_items_fts_delete AFTER DELETE ON chat_items BEGIN"
    " DELETE FROM chat_items_fts WHERE rowid = old.rowid; END",
]


POSTGRESQL_INDEX = (
    "CREATE INDEX ix_chat_items_search ON chat_items USING gin (jsonb_to_tsvector("
    "'simple'::regconfig, jsonb_path_query_array(payload, '$.content[*].text'::jsonpath),"
    " '[\"string\"]'::jsonb))"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRESQL_INDEX)
        return
    texts = {"chat_items_text": TEXT.format(row="chat_items"), "new_text": TEXT.format(row="new")}
    for statement in STATEMENTS:
        op.execute(statement.format(**texts))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_chat_items_search")
        return
    for trigger in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER chat_items_fts_{trigger}")
    op.execute("DROP TABLE chat_items_fts")
