"""Settings: the only reader of the environment (variables prefixed ``CHAT_``)."""

from functools import cached_property
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.auth import Access, parse_patterns

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./chat.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHAT_", extra="ignore")

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy async URL; postgresql+asyncpg://... for PostgreSQL",
    )
    host: str = Field("127.0.0.1", description="where `python -m app` listens")
    port: int = Field(8000, ge=0, le=65535, description="where `python -m app` listens")
    redis_url: str | None = Field(
        None, description="unset: fan-out inside the process; set: fan-out through Redis pub/sub"
    )
    redis_channel_prefix: str = Field("chat", description="prefix of the Redis channels")
    history_replay: int = Field(
        50, ge=0, le=1000, description="how many stored messages a new joiner receives"
    )
    max_message_bytes: int = Field(
        4096, ge=1, le=16 * 1024 * 1024, description="largest accepted message text, UTF-8 bytes"
    )
    auto_migrate: bool = Field(
        True, description="0: the server does not touch the schema (run `alembic upgrade head`)"
    )
    allowed_origins: str | None = Field(
        None,
        description="comma-separated Origins allowed to open a WebSocket; unset: own host only",
    )
    rate_limit: float = Field(
        20.0, ge=0, description="per-connection messages/s (token bucket refill); 0 disables"
    )
    rate_burst: int = Field(
        60, ge=0, description="per-connection token bucket size (messages); 0 disables"
    )
    send_queue: int = Field(
        1000, ge=1, description="frames a connection may have waiting before it counts as too slow"
    )
    send_queue_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1,
        description="bytes a connection may have waiting (queued frames and socket buffers "
        "together) before it counts as too slow",
    )
    write_batch: int = Field(
        1000, ge=1, description="most messages the writer commits in one transaction"
    )
    sqlite_busy_timeout_ms: int = Field(
        5000, ge=0, description="how long SQLite waits for a lock before a commit fails"
    )
    sqlite_synchronous: Literal["FULL", "NORMAL"] = Field(
        "FULL",
        description="FULL: a commit survives power loss; NORMAL: it survives a crash of the "
        "server process, not of the machine (faster: no fsync per commit)",
    )
    log_level: str = Field("info", description="logging level")
    auth_secret: SecretStr | None = Field(
        None,
        min_length=32,
        description="HS256 secret of the access tokens (at least 32 characters); unset or "
        "empty: open chat, no tokens",
    )
    public_rooms: str | None = Field(
        None,
        description="with CHAT_AUTH_SECRET: comma-separated room patterns open without a token",
    )

    @field_validator("auth_secret", mode="before")
    @classmethod
    def _empty_secret_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("public_rooms")
    @classmethod
    def _room_patterns(cls, value: str | None) -> str | None:
        parse_patterns(value)  # ValueError names the entry that is not a room pattern
        return value

    @cached_property
    def access(self) -> Access:
        """Who may use which room (app/auth.py); the public rooms only count with a secret."""
        if self.auth_secret is None:
            return Access()
        return Access(self.auth_secret.get_secret_value(), parse_patterns(self.public_rooms))

    @cached_property
    def origins(self) -> frozenset[str] | None:
        """The allowed Origins, normalised, or None for 'the server's own host only'."""
        if self.allowed_origins is None or not self.allowed_origins.strip():
            return None
        return frozenset(
            o.strip().rstrip("/").lower() for o in self.allowed_origins.split(",") if o.strip()
        )

    @property
    def rate_limited(self) -> bool:
        return self.rate_limit > 0 and self.rate_burst > 0
