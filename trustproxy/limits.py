"""Time limits for regular expressions that count the work, not the wait.

The ``regex`` module's ``timeout`` is wall-clock time. On a loaded machine (workers, the GIL
shared by a worker's guard threads, other processes on the same cores) a search that needs a
millisecond of CPU can see a 100 ms wall-clock limit pass while its thread waits for a core, and
the request then fails closed for no reason (seen in the 10-minute soak: 6 of 19,663 replies
withheld with a toxicity pattern "over its time limit").

:func:`cpu_bounded` runs the call with the limit and, when it times out, looks at how much CPU
its thread actually got: less than the limit means the thread was waiting, so the call is run
again (a bounded number of times); the limit's worth of CPU or more means the pattern really
is that slow on that text, and the ``TimeoutError`` stands (fail closed, as before).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

RETRIES = 3  # a call waits at most (1 + 2 + 4 + 8) x limit of wall time before it is given up


def cpu_bounded(run: Callable[[float], T], limit: float, *, retries: int = RETRIES) -> T:
    """``run(wall)`` (which raises ``TimeoutError`` when its wall-clock limit ``wall`` passes),
    retried while the thread has spent less than ``limit`` seconds of CPU on it. Each retry
    doubles the wall-clock limit (``limit``, 2x, 4x, 8x: at most 15x ``limit`` of wall time in
    all), so a call that needs a fair share of ``limit`` finishes on a machine that gives its
    thread a third of a core, instead of starting over inside the same window every time."""
    start = time.thread_time()
    for attempt in range(retries + 1):
        try:
            return run(limit * (2 ** attempt))
        except TimeoutError:
            if attempt == retries or time.thread_time() - start >= limit:
                raise
    raise TimeoutError  # pragma: no cover - the loop returns or raises
