"""search index: FTS5 on SQLite, tsvector + GIN on PostgreSQL, filled from stored messages

Both fold case and accents the same way, and cut words at every character that is not a letter
or digit (so `foo.png` is `foo` `png` on both):
- SQLite: FTS5 over `messages` (external content: the text is not stored twice), tokenizer
  `unicode61 remove_diacritics 2`. The writer adds each batch with one INSERT ... SELECT in the
  batch's own transaction (app/store_search.py); triggers remove a deleted message (deletes are
  rare, and every deleter is then covered: REST, retention, import).
- PostgreSQL: `search_vector`, a generated column (so every writer keeps it in step, and adding
  it computes it for the stored rows), `to_tsvector('simple', chat_search_words(text))`:
  `simple` drops no stop word of any language; `chat_search_words` strips the combining marks
  of the canonical decomposition (exactly what SQLite's remove_diacritics does; the `unaccent`
  extension folds more, `ø`/`ł`/`ß`/`æ`, which SQLite does not), lower-cases with ICU, and
  turns every run of non-alphanumerics into one space (the default parser would otherwise keep
  `foo.png`, e-mails and URLs as single words). Every function it calls is immutable, so it is
  declared IMMUTABLE honestly. `chat_search_term` turns one word of a query into a tsquery
  through the same function, so a query is folded exactly as the texts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_UP = [
    "CREATE VIRTUAL TABLE messages_fts USING fts5(text, content='messages', "
    "content_rowid='id', columnsize=0, tokenize='unicode61 remove_diacritics 2')",
    "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')",
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "END",
    "CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "INSERT INTO messages_fts(rowid, text) VALUES (new.id, new.text); "
    "END",
]
SQLITE_DOWN = [
    "DROP TRIGGER messages_fts_update",
    "DROP TRIGGER messages_fts_delete",
    "DROP TABLE messages_fts",
]

POSTGRES_UP = [
    r"""
    CREATE FUNCTION chat_search_words(t text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
      SELECT btrim(regexp_replace(
        lower(normalize(regexp_replace(normalize(t, NFD), '[\u0300-\u036f]+', '', 'g'), NFC)
              COLLATE "und-x-icu") COLLATE "und-x-icu",
        '[^[:alnum:]]+', ' ', 'g'))
    $$
    """,
    r"""
    CREATE FUNCTION chat_search_term(word text, prefix boolean) RETURNS tsquery
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
      SELECT CASE
        WHEN w = '' THEN phraseto_tsquery('simple'::regconfig, '')
        WHEN prefix THEN to_tsquery('simple'::regconfig,
                                    '''' || replace(w, ' ', ''' <-> ''') || ''':*')
        ELSE phraseto_tsquery('simple'::regconfig, w)
      END
      FROM (SELECT chat_search_words(word) AS w) AS folded
    $$
    """,
    "ALTER TABLE messages ADD COLUMN search_vector tsvector GENERATED ALWAYS AS "
    "(to_tsvector('simple'::regconfig, chat_search_words(text))) STORED",
    "CREATE INDEX ix_messages_search_vector ON messages USING gin (search_vector)",
]
POSTGRES_DOWN = [
    "DROP INDEX ix_messages_search_vector",
    "ALTER TABLE messages DROP COLUMN search_vector",
    "DROP FUNCTION chat_search_term(text, boolean)",
    "DROP FUNCTION chat_search_words(text)",
]


def _run(statements: dict[str, list[str]]) -> None:
    for statement in statements[op.get_bind().dialect.name]:
        op.execute(statement)


def upgrade() -> None:
    _run({"sqlite": SQLITE_UP, "postgresql": POSTGRES_UP})


def downgrade() -> None:
    _run({"sqlite": SQLITE_DOWN, "postgresql": POSTGRES_DOWN})
