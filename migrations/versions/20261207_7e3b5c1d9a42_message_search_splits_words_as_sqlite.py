"""The message search on PostgreSQL splits a message into words as SQLite's and the query do

Revision ID: 7e3b5c1d9a42
Revises: 28b73e8781a7
Create Date: 2026-12-07 23:50:00.000000

PostgreSQL's parser keeps an email address, a URL, a host, a file name, a version, a decimal
number and a hyphenated number whole (``john.doe@example.com``, ``invoice_2024.pdf``,
``ORD-12345`` as ``ord`` and ``-12345``), while the search looks for the words between such
punctuation (``kithost.conversations.repository.search_words``), as SQLite's FTS5 splits
them: on PostgreSQL, searching for an email address, an order number or a file name found
nothing. The indexed expression is now ``message_words(payload)``: the content parts' text
with ASCII punctuation read as spaces (and a final sigma as sigma, which PostgreSQL's lower
case keeps apart: ``ΟΔΟΣ`` and ``οδος`` are one word, as on SQLite), as a ``simple``
tsvector. ``ix_chat_items_search`` and the view ``chat_item_words`` (migration
``bf5a3a2ac457``, its condition the ``tenant_isolation`` policy's) are made again with it.
Nothing on SQLite.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "7e3b5c1d9a42"
down_revision: str | None = "28b73e8781a7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = (
    "CREATE FUNCTION message_words(payload jsonb) RETURNS tsvector"
    " LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN to_tsvector('simple'::regconfig, replace("
    "regexp_replace(coalesce((SELECT string_agg(part, ' ') FROM jsonb_array_elements_text("
    "jsonb_path_query_array(payload, '$.content[*].text ? (@.type() == \"string\")')) AS part),"
    " ''), '[!-/:-@[-`{-~]', ' ', 'g'), '\u03c2', '\u03c3'))"
)
"""A message's words: its content parts' text (strings only, space-separated, as SQLite's
index reads them), ASCII punctuation (ranges of code points, no locale's classes; ``translate``
is slower) a space, a final sigma a sigma."""
CONDITION = (
    " FROM chat_items WHERE tenant_id = NULLIF(current_setting('kithost.tenant_id', true), '')"
    "::uuid OR current_setting('kithost.rls_bypass', true) = 'on'"
)
OLD_WORDS = (
    "jsonb_to_tsvector('simple'::regconfig, jsonb_path_query_array(payload,"
    " '$.content[*].text'::jsonpath), '[\"string\"]'::jsonb)"
)
"""The expression of ``ix_chat_items_search`` before (migration ``c3f1a9d27e64``)."""


def _words(expression: str) -> list[str]:
    """Index and view, made again on ``expression``."""
    return [
        "DROP VIEW chat_item_words",
        "DROP INDEX ix_chat_items_search",
        f"CREATE INDEX ix_chat_items_search ON chat_items USING gin (({expression}))",
        "CREATE VIEW chat_item_words AS SELECT thread_id, tenant_id, kind,"
        f" {expression} AS words{CONDITION}",
    ]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in [FUNCTION, *_words("message_words(payload)")]:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in [*_words(OLD_WORDS), "DROP FUNCTION message_words(jsonb)"]:
            op.execute(statement)
