"""Logging for `python -m app`: uvicorn's format, plus the app's own logger."""

import logging
from typing import Any

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


def log_config(level: str) -> dict[str, Any]:
    config: dict[str, Any] = {
        **LOGGING_CONFIG,
        "filters": {"client_faults": {"()": ClientFaultsOnOneLine}},
        "loggers": dict(LOGGING_CONFIG["loggers"]),
    }
    config["loggers"]["uvicorn.error"] = {
        **config["loggers"].get("uvicorn.error", {"level": "INFO"}),
        "filters": ["client_faults"],
    }
    config["loggers"]["app"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config
