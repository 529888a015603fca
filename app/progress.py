"""The progress line of a long command: on stderr, and only when stderr is a terminal.

Piped or redirected (a script, a cron job, a log file), a command writes nothing but its own
lines: no bar characters or carriage returns end up in a log.
"""

import sys

from tqdm import tqdm


def on_terminal() -> bool:
    return sys.stderr.isatty()


def progress_bar(*, total: int | None, unit: str, unit_scale: bool = False) -> "tqdm[None]":
    """A tqdm bar on stderr (`update(n)` as work is done); a no-op when not on a terminal."""
    return tqdm(
        total=total,
        unit=unit,
        unit_scale=unit_scale,
        file=sys.stderr,
        disable=not on_terminal(),
        dynamic_ncols=True,
        mininterval=0.5,
    )
