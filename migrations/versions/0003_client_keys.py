"""client keys: a keyed send is stored once per room (chat.v2.json idempotency)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("client_key", sa.String(length=64), nullable=True))
    # Unique per room; NULLs (unkeyed sends) never collide on SQLite or PostgreSQL.
    op.create_index(
        "ix_messages_room_id_client_key", "messages", ["room_id", "client_key"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ix_messages_room_id_client_key", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("client_key")
