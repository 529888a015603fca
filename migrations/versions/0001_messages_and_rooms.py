"""messages and rooms

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("room_id", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_messages_room_id_id", "messages", ["room_id", "id"], unique=False)
    op.create_table(
        "rooms",
        sa.Column("room_id", sa.String(length=64), nullable=False),
        sa.Column("messages", sa.BigInteger(), nullable=False),
        sa.Column("last_message_id", sa.BigInteger(), nullable=False),
        sa.Column("last_message_at", app.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("room_id", name=op.f("pk_rooms")),
    )
    op.create_index("ix_rooms_last_message_id", "rooms", ["last_message_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_rooms_last_message_id", table_name="rooms")
    op.drop_table("rooms")
    op.drop_index("ix_messages_room_id_id", table_name="messages")
    op.drop_table("messages")
