"""Logging for `python -m app`: uvicorn's format, or one JSON object per line.

`CHAT_LOG_FORMAT=json` gives every line (the app's, uvicorn's, its access log, warnings and
other libraries') as a JSON object with `time` (ISO 8601 UTC), `level`, `logger`, `message`,
and the fields a line carries of its own (`room`, `code`, counts: the `extra=` of the call; an
access line's `client`, `method`, `path`, `status`). Tokens are redacted in both formats.
"""

import logging
import re
from typing import Any
from urllib.parse import unquote_plus

from pythonjsonlogger.core import RESERVED_ATTRS
from uvicorn.config import LOGGING_CONFIG


class ClientFaultsOnOneLine(logging.Filter):
    """A client's malformed frame is its fault, not the server's: one line, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.getMessage().startswith("Invalid UTF-8"):
            record.msg = f"{record.getMessage().strip()} Closed with 1007."
            record.args = None
            record.exc_info = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class RedactTokens(logging.Filter):
    """No access token reaches a log line. uvicorn logs request paths with their query string
    (the access log, and "WebSocket /room?access_token=..." lines), and at debug level the
    websockets library logs every handshake header, Authorization included."""

    # A query parameter: its name may be percent-encoded (`access%5Ftoken` is read as well).
    _PARAM = re.compile(r"([?&;])([^=&#\s\"']*)=([^&#\s\"']*)")
    _BEARER = re.compile(r"(bearer\s+)[^\s\"',]+", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = _redact(record.msg)
        if isinstance(record.args, tuple):
            args = record.args
            if len(args) == 2 and str(args[0]).lower() in _SECRET_HEADERS:
                args = (args[0], "[redacted]")  # "< %s: %s", one header
            record.args = tuple(_redact(a) if isinstance(a, str) else a for a in args)
        return True


_SECRET_HEADERS = {"authorization", "proxy-authorization", "cookie"}


def _redact(text: str) -> str:
    if "=" in text:
        text = RedactTokens._PARAM.sub(_hide_token_param, text)
    if " " in text:
        text = RedactTokens._BEARER.sub(r"\1[redacted]", text)
    return text


def _hide_token_param(match: re.Match[str]) -> str:
    if unquote_plus(match[2]) != "access_token":
        return match[0]
    return f"{match[1]}{match[2]}=[redacted]"


class AccessFields(logging.Filter):
    """uvicorn's access line, `client - "METHOD PATH HTTP/v" status`, as fields of its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            client, method, path, _, status = args
            record.client, record.method, record.status = client, method, status
            record.path = _redact(str(path))
        return True


JSON_FORMATTER = {
    "()": "pythonjsonlogger.json.JsonFormatter",
    "fmt": "%(levelname)s %(name)s %(message)s",
    "rename_fields": {"levelname": "level", "name": "logger"},
    "timestamp": "time",
    # uvicorn's colored copy of each message is noise in JSON.
    "reserved_attrs": [*RESERVED_ATTRS, "color_message"],
}


def log_config(level: str, fmt: str = "text") -> dict[str, Any]:
    formatters = dict(LOGGING_CONFIG["formatters"])
    if fmt == "json":
        formatters = {"default": JSON_FORMATTER, "access": JSON_FORMATTER}
    config: dict[str, Any] = {
        **LOGGING_CONFIG,
        "formatters": formatters,
        "filters": {
            "client_faults": {"()": ClientFaultsOnOneLine},
            "redact_tokens": {"()": RedactTokens},
            "access_fields": {"()": AccessFields},
        },
        "loggers": dict(LOGGING_CONFIG["loggers"]),
        "handlers": {
            name: {**handler, "filters": [*handler.get("filters", []), "redact_tokens"]}
            for name, handler in LOGGING_CONFIG["handlers"].items()
        },
        # Other libraries' warnings (and Python's, captured below) on the same handler, rather
        # than on logging's last-resort plain-text handler.
        "root": {"handlers": ["default"], "level": "WARNING"},
    }
    config["loggers"]["uvicorn.error"] = {
        **config["loggers"].get("uvicorn.error", {"level": "INFO"}),
        "filters": ["client_faults"],
    }
    config["loggers"]["uvicorn.access"] = {
        **config["loggers"]["uvicorn.access"],
        "filters": ["access_fields"],
    }
    config["loggers"]["py.warnings"] = {"handlers": ["default"], "propagate": False}
    config["loggers"]["app"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    logging.captureWarnings(True)
    return config
