"""Tables. A message's id is its order within a room and the resume cursor (`?since=`)."""

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime

# SQLite only makes INTEGER PRIMARY KEY an alias of the rowid; elsewhere use 64 bits.
IdType = BigInteger().with_variant(Integer(), "sqlite")

ROOM_ID_MAX = 64
AUTHOR_MAX = 64  # a display name or a token's `sub`
CLIENT_KEY_MAX = 64


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_room_id_id", "room_id", "id"),
        # A client's retry of a keyed send is recognised by the database itself. Partial:
        # unkeyed sends (NULL) can never conflict, and leaving them out spares every such
        # insert a B-tree update (migration 0006). Led by the key: keys that begin with the
        # time (the page's) land at the index's end together, whatever their rooms (0009).
        Index(
            "ix_messages_client_key_room_id",
            "client_key",
            "room_id",
            unique=True,
            sqlite_where=text("client_key IS NOT NULL"),
            postgresql_where=text("client_key IS NOT NULL"),
        ),
        # Retention finds the oldest messages by their time (migration 0005).
        Index("ix_messages_created_at", "created_at"),
        # Ids are never reused, even after the newest row is deleted: they are resume cursors.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    room_id: Mapped[str] = mapped_column(String(ROOM_ID_MAX))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    author: Mapped[str | None] = mapped_column(String(AUTHOR_MAX))
    author_id: Mapped[str | None] = mapped_column(String(AUTHOR_MAX))
    client_key: Mapped[str | None] = mapped_column(String(CLIENT_KEY_MAX))


class Room(Base):
    """One row per room that has messages, kept by the writer in the same transaction."""

    __tablename__ = "rooms"
    __table_args__ = (Index("ix_rooms_last_message_id", "last_message_id"),)

    room_id: Mapped[str] = mapped_column(String(ROOM_ID_MAX), primary_key=True)
    messages: Mapped[int] = mapped_column(BigInteger)
    last_message_id: Mapped[int] = mapped_column(BigInteger)
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime())
