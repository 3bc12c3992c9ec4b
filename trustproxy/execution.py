"""Where guard work runs: bounded pools, a fair turn at each detector, timeouts that stop work.

The model (see docs/benchmarks-load.md for why this shape and not guard processes):

- **One pool per kind of guard work** (``detection``: request masking and ``/v1/trust/inspect``;
  ``output``: output-PII windows of replies; ``toxicity``: scoring batches), each a small thread
  pool with a **bounded queue**. A pool that is full refuses at once with :class:`Overloaded`
  (503 + Retry-After) instead of letting work pile up, so one kind cannot starve the others.
- **Bounded turns.** A spaCy/Presidio detector is not re-entrant and holds the GIL for most of
  its work, so every call into one goes through that detector's :class:`FairGate`, a FIFO turn
  lock. Request masking asks for one turn per *chunk* (at most ``detection_chunk_chars``
  characters), never one turn for a whole request: a small request waits behind at most one chunk
  of each big request ahead of it, not behind the whole of it.
- **Timeouts that stop work.** Every job runs with a :class:`Job` token. When its request times
  out or goes away, the token is cancelled: a queued job never starts (the executor future is
  cancelled), a job waiting for a turn leaves the queue, and a running job stops at its next
  :func:`checkpoint` (before its next chunk). So an abandoned job costs at most one chunk, and it
  never holds a turn, a lock or any request's state after that.
- **No shared state in jobs.** A job works on its own copies (see ``trustproxy.inspection``); its
  result is adopted by the request on the event loop only when it completes in time.

Nothing here knows about HTTP; ``trustproxy.server.admission`` maps the bounds to requests.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from trustproxy.errors import GuardFailed, Overloaded

__all__ = ["PoolSettings", "ExecutionSettings", "Abandoned", "Job", "checkpoint", "current_job", "FairGate",
           "GuardPool", "Guards"]

T = TypeVar("T")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PoolSettings(_Strict):
    """One guard pool: threads that run jobs, and how many more jobs may wait for one."""

    threads: int = Field(ge=1, le=64, description="Threads running this kind of guard work.")
    queue: int = Field(ge=0, le=100_000, description="Jobs that may wait for a thread; one more is refused with 503.")


class ExecutionSettings(_Strict):
    """Admission control and guard execution, per worker process (``execution:`` in trustproxy.yaml)."""

    max_in_flight: int = Field(64, ge=1, description="Requests to /v1 served at once by one worker; one more gets 503 + Retry-After.")
    max_in_flight_per_client: int | None = Field(None, ge=1, description="Requests at once per client (API key) per worker; one more gets 429 + Retry-After. Unset: no per-client limit.")
    retry_after_seconds: int = Field(1, ge=1, le=3600, description="Retry-After sent with 503/429 refusals.")
    detection: PoolSettings = Field(default_factory=lambda: PoolSettings(threads=4, queue=64), description="Request detection (masking) and dry runs.")
    output: PoolSettings = Field(default_factory=lambda: PoolSettings(threads=4, queue=128), description="Output-PII windows of replies.")
    toxicity: PoolSettings = Field(default_factory=lambda: PoolSettings(threads=1, queue=4096), description="Toxicity scoring: threads run batches; queue bounds the windows waiting to be batched.")
    detection_chunk_chars: int = Field(2000, ge=256, le=1_000_000, description="Characters of request text detected per turn at the detector (a fairness bound).")
    scoring_timeout_seconds: float = Field(10.0, gt=0, description="Seconds a toxicity batch may take before its requests fail closed (guard_timeout).")
    audit_buffer: int = Field(10_000, ge=16, description="Audit events waiting for the writer thread; admission refuses new requests before it can overflow.")


class Abandoned(Exception):
    """Raised inside a job whose request timed out or went away (never reaches a client)."""


class Job:
    """The cancellation token of one unit of guard work."""

    __slots__ = ("_cancelled",)

    def __init__(self) -> None:
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()


_local = threading.local()


def current_job() -> Job | None:
    """The job the calling pool thread is running (``None`` outside a pool)."""
    return getattr(_local, "job", None)


def checkpoint() -> None:
    """Stop here if the current job was abandoned. Call between bounded steps of a job."""
    job = current_job()
    if job is not None and job.cancelled:
        raise Abandoned()


class FairGate:
    """A FIFO turn lock for one shared, non-re-entrant resource (a detector).

    Turns are handed over in arrival order (a plain ``threading.Lock`` lets the thread that just
    released it win again). A cancelled job waiting for its turn leaves the queue."""

    def __init__(self, poll: float = 0.02) -> None:
        self._mu = threading.Lock()
        self._held = False
        self._waiters: deque[threading.Event] = deque()
        self._poll = poll

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def acquire(self) -> None:
        job = current_job()
        with self._mu:
            if not self._held and not self._waiters:
                self._held = True
                return
            ev = threading.Event()
            self._waiters.append(ev)
        while not ev.wait(self._poll):
            if job is not None and job.cancelled:
                with self._mu:
                    if not ev.is_set():
                        self._waiters.remove(ev)
                        raise Abandoned()
                # handed the turn just now: give it on, then stop
                self.release()
                raise Abandoned()

    def release(self) -> None:
        with self._mu:
            if self._waiters:
                self._waiters.popleft().set()  # hand over: the gate stays held
            else:
                self._held = False

    @contextmanager
    def turn(self) -> Iterator[None]:
        checkpoint()
        self.acquire()
        try:
            yield
        finally:
            self.release()


class GuardPool:
    """A thread pool with a bounded number of jobs (running + queued) and per-job timeouts.

    ``run`` is called from the event loop only. ``on_refused(reason)`` is called for every
    refusal (the metric)."""

    def __init__(self, name: str, settings: PoolSettings, *, retry_after: int = 1,
                 on_refused: Callable[[str], None] | None = None) -> None:
        self.name = name
        self.capacity = settings.threads + settings.queue
        self.retry_after = retry_after
        self.executor = ThreadPoolExecutor(max_workers=settings.threads, thread_name_prefix=f"trustproxy-{name}")
        self._on_refused = on_refused
        self._mu = threading.Lock()
        self._pending = 0
        self.completed = 0
        self.abandoned = 0

    @property
    def pending(self) -> int:
        """Jobs accepted and not finished (queued, running, or abandoned and still running)."""
        return self._pending

    def admit(self) -> None:
        """Raise :class:`Overloaded` if one more job would exceed the bound."""
        if self._pending >= self.capacity:
            if self._on_refused is not None:
                self._on_refused(f"pool_{self.name}")
            raise Overloaded("The proxy's guards are at capacity; retry shortly.", reason=f"pool_{self.name}",
                             retry_after=self.retry_after)

    def submit(self, fn: Callable[..., T], *args: Any) -> tuple[Future[T], Job]:
        self.admit()
        job = Job()
        with self._mu:
            self._pending += 1
        fut = self.executor.submit(self._call, job, fn, *args)
        fut.add_done_callback(self._done)
        return fut, job

    def _call(self, job: Job, fn: Callable[..., T], *args: Any) -> T:
        if job.cancelled:
            raise Abandoned()
        _local.job = job
        try:
            return fn(*args)
        finally:
            _local.job = None

    def _done(self, fut: Future[Any]) -> None:
        with self._mu:
            self._pending -= 1
            if fut.cancelled() or isinstance(fut.exception(), Abandoned):
                self.abandoned += 1
            else:
                self.completed += 1

    async def run(self, fn: Callable[..., T], *args: Any, timeout: float, what: str = "Guard work") -> T:
        """Run ``fn(*args)`` in the pool; fail closed with ``guard_timeout`` after ``timeout`` s.

        On timeout or cancellation the job is abandoned (see the module docstring)."""
        fut, job = self.submit(fn, *args)
        wrapped = asyncio.wrap_future(fut)
        try:
            return await asyncio.wait_for(asyncio.shield(wrapped), timeout)
        except asyncio.TimeoutError:
            job.cancel()
            fut.cancel()
            wrapped.add_done_callback(_retrieve)
            raise GuardFailed(f"{what} timed out; the request was not sent.", code="guard_timeout") from None
        except asyncio.CancelledError:
            job.cancel()
            fut.cancel()
            wrapped.add_done_callback(_retrieve)
            raise

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


class Guards:
    """The pools and detector gates of one worker process (owned by the Runtime)."""

    def __init__(self, settings: ExecutionSettings, on_refused: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        ra = settings.retry_after_seconds
        self.detection = GuardPool("detection", settings.detection, retry_after=ra, on_refused=on_refused)
        self.output = GuardPool("output", settings.output, retry_after=ra, on_refused=on_refused)
        self.toxicity = GuardPool("toxicity", settings.toxicity, retry_after=ra, on_refused=on_refused)
        self._gates: dict[int, FairGate] = {}
        self._gates_mu = threading.Lock()

    def gate(self, resource: object) -> FairGate:
        """The turn lock of one detector (created on first use)."""
        key = id(resource)
        with self._gates_mu:
            g = self._gates.get(key)
            if g is None:
                g = self._gates[key] = FairGate()
            return g

    def pools(self) -> list[GuardPool]:
        return [self.detection, self.output, self.toxicity]

    def shutdown(self) -> None:
        for p in self.pools():
            p.shutdown()
