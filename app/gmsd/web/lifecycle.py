"""Graceful shutdown: on SIGTERM readiness fails at once, then uvicorn drains and stops.

uvicorn's own handling of SIGTERM stops listening at once, lets in-flight requests finish
(bounded by `timeout_graceful_shutdown`, which `gmsd serve --shutdown-timeout` sets) and then
runs the lifespan shutdown, where the Redis connections are closed. What it lacks is a moment
between "the orchestrator asked us to stop" and "new connections are refused": load balancers
and Kubernetes endpoints learn about a terminating pod asynchronously. So gmsd wraps uvicorn's
SIGTERM handler: the signal flips readiness to 503 immediately (`draining()`), and uvicorn's
handler runs `shutdown_delay` seconds later; meanwhile requests are still served normally.
SIGINT (Ctrl-C at a terminal) is left alone: it stops at once, as a person expects.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

log = logging.getLogger("gmsd")

_draining = threading.Event()


def draining() -> bool:
    """True once this process has been asked to stop: readiness must fail from then on."""
    return _draining.is_set()


def begin_draining() -> None:
    """Mark this process as stopping (readiness answers 503 from now on)."""
    _draining.set()


def delay_sigterm(delay: float) -> bool:
    """Wrap the SIGTERM handler the server installed: drain first, hand over after `delay` s.

    Call it from the running event loop in the main thread, after the server installed its
    signal handlers (i.e. in the lifespan startup). Returns False where that is not the case
    (e.g. an app run by a test client in a thread), leaving signals as they are.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    handler = signal.getsignal(signal.SIGTERM)
    if not callable(handler):
        return False
    server_handler: Callable[[int, FrameType | None], Any] = handler
    loop = asyncio.get_running_loop()

    def hand_over() -> None:
        server_handler(signal.SIGTERM, None)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        # A signal handler may run between any two bytecodes of the event loop: only set a flag
        # and ask the loop (thread-safely) to do the rest. A second SIGTERM skips the delay.
        if draining() or delay <= 0:
            begin_draining()
            server_handler(signum, frame)
            return
        begin_draining()
        loop.call_soon_threadsafe(_announce_and_wait, loop, delay, hand_over)

    signal.signal(signal.SIGTERM, on_sigterm)
    return True


def _announce_and_wait(loop: asyncio.AbstractEventLoop, delay: float, hand_over: Callable[[], None]) -> None:
    log.info("SIGTERM: readiness answers 503 now; shutting down in %g s", delay)
    loop.call_later(delay, hand_over)
