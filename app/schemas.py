"""Pydantic shapes of the REST responses (and so of the OpenAPI document)."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, PlainSerializer, WithJsonSchema

from app.messages import iso_utc

Timestamp = Annotated[
    datetime,
    PlainSerializer(iso_utc, return_type=str),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "example": "2026-11-24T21:40:00.123456Z"}
    ),
]


class MessageOut(BaseModel):
    id: int = Field(description="The message's order in its room and its resume cursor")
    room_id: str
    text: str
    created_at: Timestamp = Field(description="When the server accepted it, UTC")
    author: str | None = Field(description="Who wrote it (a display name), or null")


class RoomOut(BaseModel):
    room_id: str
    messages: int = Field(description="How many messages the room has")
    last_message_at: Timestamp


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    connections: int = Field(description="Open WebSocket connections in this process")
    rooms: int = Field(description="Rooms with a connection in this process")
    queued_writes: int = Field(description="Messages accepted but not yet committed")
    queued_frames: int = Field(description="Frames waiting in this process's connection queues")
    tasks: int = Field(description="asyncio tasks alive in this process (a leak shows here)")


class ErrorDetail(BaseModel):
    """FastAPI's body for an HTTP error other than a validation error."""

    detail: str = Field(examples=["Not Found"])
