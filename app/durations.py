"""Durations on the command line: `30d`, `12h`, `90m`, `45s`; a bare number is seconds."""

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+)([smhd]?)")


def parse_duration(text: str) -> int:
    """Seconds; ValueError for anything else (an argparse `type=` turns it into a usage error)."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 30d, 12h, 90m or 45s")
    return int(match[1]) * _UNITS[match[2] or "s"]
