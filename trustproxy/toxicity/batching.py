"""Micro-batching: windows from concurrent streams share one ``score_batch`` call.

An idle scorer starts after ``max_wait_ms`` (default 0: the next loop turn; texts queued in
the same turn join it). One batch runs at a time per scorer, in a thread (off the event loop); texts that arrive
meanwhile form the next batch, so batches grow with load; a full ``max_batch`` starts at once. An error fails every text of its batch.

Bounds: at most ``max_queue`` texts wait (one more raises ``Overloaded``: 503 + Retry-After); a
batch that takes longer than ``timeout`` seconds fails its texts with ``guard_timeout`` (its
thread finishes the batch, whose cost is bounded by ``max_batch`` windows of at most
``max_hold_chars``; the next batch waits for the thread). A waiter that goes away (its request
ended) is dropped from the queue before its batch is formed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Sequence

from trustproxy.errors import GuardFailed, Overloaded
from trustproxy.toxicity.scorers import Scorer


class BatchingScorer:
    """``await score(text)`` -> ``{category: score}``; shared by all streams of a process.

    ``calls`` and ``texts`` count ``score_batch`` calls and texts scored (metrics, tests)."""

    def __init__(self, scorer: Scorer, max_batch: int = 16, max_wait_ms: float = 0.0,
                 executor: concurrent.futures.Executor | None = None, *, timeout: float | None = None,
                 max_queue: int | None = None, retry_after: int = 1,
                 on_refused: Callable[[str], None] | None = None) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.timeout = timeout
        self.max_queue = max_queue
        self.retry_after = retry_after
        self._on_refused = on_refused
        self.scorer = scorer
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self._executor = executor
        self._own_executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._queue: list[tuple[str, asyncio.Future[dict[str, float]]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._running = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.calls = 0
        self.texts = 0

    @property
    def name(self) -> str:
        return self.scorer.name

    @property
    def categories(self) -> tuple[str, ...]:
        return self.scorer.categories

    async def score(self, text: str) -> dict[str, float]:
        return await self._enqueue(text, asyncio.get_running_loop())

    async def score_many(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Several texts queued at once (one future each, no task per text)."""
        loop = asyncio.get_running_loop()
        futs: list[asyncio.Future[dict[str, float]]] = []
        try:
            for t in texts:
                futs.append(self._enqueue(t, loop))
        except Overloaded:
            for f in futs:
                f.cancel()  # queued ones are dropped before their batch forms
            raise
        return list(await asyncio.gather(*futs))

    def _enqueue(self, text: str, loop: asyncio.AbstractEventLoop) -> "asyncio.Future[dict[str, float]]":
        if self.max_queue is not None and len(self._queue) >= self.max_queue:
            self._queue = [q for q in self._queue if not q[1].done()]  # drop waiters that left
            if len(self._queue) >= self.max_queue:
                if self._on_refused is not None:
                    self._on_refused("pool_toxicity")
                raise Overloaded("The proxy's toxicity scorer is at capacity; retry shortly.",
                                 reason="pool_toxicity", retry_after=self.retry_after)
        fut: asyncio.Future[dict[str, float]] = loop.create_future()
        self._queue.append((text, fut))
        if len(self._queue) >= self.max_batch:
            self._kick(loop)
        elif self._timer is None and not self._running:
            # idle scorer: wait max_wait_ms (default 0: the next loop turn) for company; texts
            # arriving while a batch runs form the next one, so batches still grow with load
            self._timer = loop.call_later(self.max_wait, self._kick, loop)
        return fut

    def _kick(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._running:
            return  # the running batch starts the next one when it ends
        self._queue = [q for q in self._queue if not q[1].done()]  # waiters whose request ended
        if not self._queue:
            return
        batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
        self._running = True
        task = loop.create_task(self._run(batch, loop))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _pool(self) -> concurrent.futures.Executor:
        if self._executor is not None:
            return self._executor
        if self._own_executor is None:
            self._own_executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="toxicity-scorer")
        return self._own_executor

    async def _run(self, batch: list[tuple[str, asyncio.Future[dict[str, float]]]],
                   loop: asyncio.AbstractEventLoop) -> None:
        texts = [t for t, _ in batch]
        try:
            self.calls += 1
            self.texts += len(texts)
            call = loop.run_in_executor(self._pool(), self.scorer.score_batch, texts)
            try:
                results = await asyncio.wait_for(call, self.timeout)
            except asyncio.TimeoutError:
                raise GuardFailed("Toxicity scoring timed out; the reply was withheld.", code="guard_timeout") from None
            if len(results) != len(texts):
                raise RuntimeError(f"scorer returned {len(results)} results for {len(texts)} texts")
        except BaseException as e:  # noqa: BLE001  every waiter fails (fail closed)
            for _, fut in batch:
                if fut.done():
                    continue
                if isinstance(e, asyncio.CancelledError):
                    fut.cancel()
                else:
                    fut.set_exception(e)
            if isinstance(e, asyncio.CancelledError):
                raise
            return
        else:
            for (_, fut), res in zip(batch, results):
                if not fut.done():
                    fut.set_result(res)
        finally:
            self._running = False
            if self._queue:
                # waited already while this batch ran: go now (or at once if a full batch)
                self._kick(loop)

    def close(self) -> None:
        """Shut down the thread this batcher created (not a caller-supplied executor)."""
        if self._own_executor is not None:
            self._own_executor.shutdown(wait=False, cancel_futures=True)
            self._own_executor = None
