"""Run the chat's drain when SIGINT/SIGTERM arrives, before the server's own shutdown.

uvicorn's shutdown closes open WebSockets with 1012 before the app hears of it; the contract
promises 1001 after pending writes are committed. So the handlers uvicorn installed are wrapped:
the drain runs first (for at most DRAIN_DEADLINE s), then uvicorn's handler. A second signal
goes straight to uvicorn's (force).
"""

import asyncio
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)
# uvicorn's handler runs after at most this long, whatever the drain still waits for.
DRAIN_DEADLINE = 7.0


def drain_before_exit(drain: Callable[[], Awaitable[None]]) -> Callable[[], None]:
    """Install the wrapping handlers; returns a function that puts the previous ones back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    hook = _DrainHook(drain, asyncio.get_running_loop())
    for sig in SIGNALS:
        signal.signal(sig, hook.on_signal)
    return hook.restore


class _DrainHook:
    def __init__(self, drain: Callable[[], Awaitable[None]], loop: asyncio.AbstractEventLoop):
        self._drain = drain
        self._loop = loop
        self._previous: dict[int, Any] = {sig: signal.getsignal(sig) for sig in SIGNALS}
        self._started = False
        self._task: asyncio.Task[None] | None = None

    def on_signal(self, sig: int, frame: FrameType | None) -> None:
        if self._started:
            self._pass_on(sig, frame)
            return
        self._started = True
        log.info("%s received: draining", signal.Signals(sig).name)
        self._loop.call_soon_threadsafe(self._start, sig)

    def _start(self, sig: int) -> None:
        self._task = self._loop.create_task(self._drain_then_pass_on(sig))

    async def _drain_then_pass_on(self, sig: int) -> None:
        try:
            await asyncio.wait_for(self._drain(), DRAIN_DEADLINE)
        except TimeoutError:
            log.warning(
                "drain on %s did not end within %.0f s", signal.Signals(sig).name, DRAIN_DEADLINE
            )
        except Exception:
            log.exception("drain on %s failed", signal.Signals(sig).name)
        self._pass_on(sig, None)

    def _pass_on(self, sig: int, frame: FrameType | None) -> None:
        handler = self._previous[sig]
        if callable(handler):
            handler(sig, frame)
        else:
            signal.signal(sig, handler)
            signal.raise_signal(sig)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            if signal.getsignal(sig) == self.on_signal:
                signal.signal(sig, handler)
