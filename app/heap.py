"""Python's cyclic collector, set for a server whose heap is mostly built at start-up.

A full collection walks every tracked object. Start-up leaves ~100,000 of them (SQLAlchemy,
pydantic, FastAPI, the app's modules) that live as long as the process, so under load every
full collection paused the event loop for 30-45 ms of CPU (more on a busy machine), which was
the tail of the many-rooms latency (docs/performance.md). Once start-up is done they are moved
to the permanent generation (`gc.freeze()`): collections then walk only what was made since.
"""

import gc
import logging

log = logging.getLogger(__name__)


def settle_after_startup() -> None:
    """Collect start-up's garbage, then freeze what is left out of the collector's walks."""
    gc.collect()
    gc.freeze()
    log.debug("%d start-up objects frozen out of the collector's walks", gc.get_freeze_count())


def unsettle_at_shutdown() -> None:
    """Hand the frozen objects back to the collector (an app made again in the same process,
    as tests do, must not pin the last one's objects for good)."""
    gc.unfreeze()
