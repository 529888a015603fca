"""Python's cyclic collector, set for a server whose heap is mostly built at start-up.

A full collection walks every tracked object. Start-up leaves ~100,000 of them (SQLAlchemy,
pydantic, FastAPI, the app's modules) that live as long as the process, so under load every
full collection paused the event loop for 30-45 ms of CPU (more on a busy machine), which was
the tail of the many-rooms latency (docs/performance.md). Once start-up is done they are moved
to the permanent generation (`gc.freeze()`): collections then walk only what was made since.

The youngest generation is collected every YOUNG allocations (net of frees) rather than
Python's 700. A message's objects (the send, the stored message, its frames) live for its
commit and fan-out, a few milliseconds; at 700, a young collection came every few dozen
messages, walked the messages in flight and promoted them, so they went on to fill the older
generations and set off full collections (7 in 10 s of the many-rooms load, up to 76 ms each
on a busy core). Collected every YOUNG, most of them are gone before they are ever walked.
"""

import gc
import logging

log = logging.getLogger(__name__)

YOUNG = 20_000
_DEFAULT_YOUNG = gc.get_threshold()[0]


def settle_after_startup() -> None:
    """Collect start-up's garbage, freeze what is left out of the collector's walks, and
    collect the youngest generation every YOUNG allocations."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG, middle, old)
    log.debug("%d start-up objects frozen out of the collector's walks", gc.get_freeze_count())


def unsettle_at_shutdown() -> None:
    """Hand the frozen objects back to the collector (an app made again in the same process,
    as tests do, must not pin the last one's objects for good)."""
    gc.unfreeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(_DEFAULT_YOUNG, middle, old)
