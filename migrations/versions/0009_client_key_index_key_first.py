"""client keys: the unique index leads with the key, so a batch's new keys share its last pages

The index of 0006 was (room_id, client_key): within each room, keys in order. A batch over 50
rooms put its keyed rows on up to 50 leaf pages of that index, one a room, each written to the
WAL at commit; version-7 keys (the page's, RFC 9562: they begin with the time) only kept each
room's new keys at the end of that room's range. Led by the key, the index keeps every room's
new keys together at its end, so a batch's keyed rows land on one or two leaves whatever their
rooms. Uniqueness is the same pair, and a lookup of (room_id, client_key) seeks it the same way
(both columns by equality; ON CONFLICT names the columns, not their order).

Measured on SQLite alone (docs/performance.md, issue 16's seventh pass), a commit of keyed rows
with the page's keys, CPU: 9 rows over 50 rooms 347 -> 277 µs (a plain one: 233), 200 rows
over 50 rooms 2,641 -> 1,777 µs, 32 rows in one room 329 -> 314 µs. Keys of no order (version
4) cost what they did: each lands on a leaf of its own either way.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYED = sa.text("client_key IS NOT NULL")
OLD, NEW = "ix_messages_room_id_client_key", "ix_messages_client_key_room_id"


def _unique(name: str, columns: list[str]) -> None:
    # The new index is built before the old one goes: the pair is never left unguarded.
    op.create_index(
        name, "messages", columns, unique=True, sqlite_where=KEYED, postgresql_where=KEYED
    )


def upgrade() -> None:
    _unique(NEW, ["client_key", "room_id"])
    op.drop_index(OLD, table_name="messages")


def downgrade() -> None:
    _unique(OLD, ["room_id", "client_key"])
    op.drop_index(NEW, table_name="messages")
