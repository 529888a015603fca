"""client keys: the unique index holds keyed messages only

Unkeyed sends (NULL keys, most of them) can never conflict, yet each was inserted into the
unique index on (room_id, client_key): one more B-tree page touched per row, scattered over
the rooms, and written to the WAL at every commit. Without them a batch of 20 plain messages
over 50 rooms costs SQLite about 20 % less (insert 8.1 -> 5.6 µs a row, commit 8.2 -> 6.5,
docs/performance.md). The writer's INSERT names the index's WHERE in its ON CONFLICT target.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYED = sa.text("client_key IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_messages_room_id_client_key", table_name="messages")
    op.create_index(
        "ix_messages_room_id_client_key",
        "messages",
        ["room_id", "client_key"],
        unique=True,
        sqlite_where=KEYED,
        postgresql_where=KEYED,
    )


def downgrade() -> None:
    op.drop_index("ix_messages_room_id_client_key", table_name="messages")
    op.create_index(
        "ix_messages_room_id_client_key", "messages", ["room_id", "client_key"], unique=True
    )
