"""Settings: the only reader of the environment (variables prefixed ``CHAT_``).

Every bound a setting has is a pydantic constraint on its field, so that one rule covers them
all: a value a field cannot take stops `python -m app` with one line naming its `CHAT_`
variable (`settings_error`), and `--help` shows the bounds (`bounds`).
"""

from functools import cached_property
from typing import Any, Literal, get_args

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from app.auth import Access, parse_patterns

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./chat.db"
PREFIX = "CHAT_"
LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore")

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy async URL; postgresql+asyncpg://... for PostgreSQL",
    )
    host: str = Field("127.0.0.1", min_length=1, description="where `python -m app` listens")
    port: int = Field(8000, ge=0, le=65535, description="where `python -m app` listens")
    redis_url: str | None = Field(
        None, description="unset: fan-out inside the process; set: fan-out through Redis pub/sub"
    )
    redis_channel_prefix: str = Field(
        "chat", min_length=1, description="prefix of the Redis channels"
    )
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
        20.0,
        ge=0,
        allow_inf_nan=False,
        description="per-connection messages/s (token bucket refill); 0 disables",
    )
    rate_burst: int = Field(
        60, ge=0, description="per-connection token bucket size (messages); 0 disables"
    )
    send_queue: int = Field(
        1000, ge=1, description="frames a connection may have waiting before it counts as too slow"
    )
    send_queue_bytes: int = Field(
        4 * 1024 * 1024,
        ge=64 * 1024,
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
    log_level: LogLevel = Field("info", description="logging level")
    log_format: Literal["text", "json"] = Field(
        "text", description="text, or json: one JSON object per log line"
    )
    metrics: bool = Field(True, description="0: no /metrics endpoint (404)")
    auth_secret: SecretStr | None = Field(
        None,
        min_length=32,
        description="HS256 secret of the access tokens (at least 32 characters); unset or "
        "empty: open chat, no tokens",
    )
    retention_days: int | None = Field(
        None,
        ge=0,
        description="unset or 0: keep messages forever; N: messages older than N days are deleted",
    )
    retention_interval: float = Field(
        600.0,
        gt=0,
        le=3600,
        description="seconds between two retention passes (with CHAT_RETENTION_DAYS)",
    )
    public_rooms: str | None = Field(
        None,
        description="with CHAT_AUTH_SECRET: comma-separated room patterns open without a token",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _sqlalchemy_url(cls, value: str) -> str:
        try:
            make_url(value)
        except ArgumentError:
            raise ValueError("not a SQLAlchemy URL (e.g. postgresql+asyncpg://...)") from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(REDIS_SCHEMES):
            raise ValueError(f"must start with {', '.join(REDIS_SCHEMES)}")
        return value or None

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


def variable(field: str) -> str:
    return f"{PREFIX}{field.upper()}"


# Values of these are never repeated in an error line (they may hold passwords or secrets).
_HIDDEN = ("secret", "url", "password", "token")


def settings_error(error: ValidationError) -> str:
    """One line naming each `CHAT_` variable whose value cannot be taken, and why."""
    problems = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "too_short":  # a secret's length reads as "items" in pydantic's words
            message = f"should have at least {item.get('ctx', {}).get('min_length')} characters"
        shown = "" if any(h in field for h in _HIDDEN) else f"={item.get('input')!s}"
        problems.append(f"{variable(field)}{shown}: {message}")
    return "bad setting: " + "; ".join(problems)


def bounds(info: FieldInfo) -> str:
    """A field's constraints in words, for `--help`: `0 to 1000`, `>= 1`, `text|json`."""
    limits = {
        name: getattr(rule, name)
        for rule in info.metadata
        for name in ("ge", "gt", "le", "lt", "min_length", "max_length")
        if hasattr(rule, name)
    }
    words = []
    if _is_literal(info.annotation):
        words.append("|".join(str(choice) for choice in get_args(info.annotation)))
    elif info.annotation is bool:
        words.append("0|1")
    if "ge" in limits and "le" in limits:
        words.append(f"{limits.pop('ge')} to {limits.pop('le')}")
    words += [f"{_WORDS[name]} {value}" for name, value in limits.items()]
    return ", ".join(words)


_WORDS = {
    "ge": ">=",
    "gt": ">",
    "le": "<=",
    "lt": "<",
    "min_length": "characters >=",
    "max_length": "characters <=",
}


def _is_literal(annotation: Any) -> bool:
    return getattr(annotation, "__origin__", None) is Literal
