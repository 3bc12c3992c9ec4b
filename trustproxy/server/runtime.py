"""Process-wide resources of a running proxy: provider, policies, models, executor, audit, metrics.

Loaded once at start-up (aiohttp cleanup context); nothing request-specific lives here.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from trustproxy.errors import GuardFailed, PolicyError
from trustproxy.policy.schema import Policy
from trustproxy.settings import Settings

log = logging.getLogger("trustproxy.runtime")


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="trustproxy-guard")
        self.hash_key = (settings.hash_key or "").encode("utf-8")
        self.provider: Any = None
        self.policies: Any = None
        self.metrics: Any = None
        self.audit: Any = None
        self._batchers: dict[Any, Any] = {}
        self._watch_task: asyncio.Task[None] | None = None
        self.ready = False
        self.active_streams = 0

    @classmethod
    async def start(cls, settings: Settings) -> "Runtime":
        rt = cls(settings)
        await rt._start()
        return rt

    async def _start(self) -> None:
        from trustproxy.audit import build_audit_log
        from trustproxy.metrics import Metrics
        from trustproxy.policy.store import PolicyStore
        from trustproxy.providers import Provider

        loop = asyncio.get_running_loop()
        self.metrics = Metrics()
        self.audit = build_audit_log(self.settings.audit)
        self.policies = PolicyStore(str(self.settings.resolved_policy_dir()), default=self.settings.default_policy,
                                    on_reload=self._on_reload)
        self._check_policy_names()
        self.provider = await loop.run_in_executor(self.executor, Provider, self.settings)
        # load every model the policies need now, not on the first request
        for loaded in self.policies.all().values():
            await loop.run_in_executor(self.executor, self.prepare_policy, loaded.policy)
        self._watch_task = asyncio.create_task(self.policies.watch())
        self.ready = True
        for name, info in self.scorer_status().items():
            log.info("policy %s: toxicity scorer %s", name, info.get("scorer"))

    def _check_policy_names(self) -> None:
        names = set(self.policies.all())
        wanted = {self.settings.default_policy} | {c.policy for c in self.settings.clients if c.policy} | \
                 {r.policy for r in self.settings.routes.values() if r.policy}
        missing = sorted(wanted - names)
        if missing:
            raise PolicyError([f"config names policies that do not exist in {self.policies.directory}: "
                               + ", ".join(missing)])

    def _on_reload(self, ok: bool) -> None:
        if self.metrics is not None:
            self.metrics.policy_reloads_total.labels(result="ok" if ok else "error").inc()

    def prepare_policy(self, policy: Policy) -> None:
        """Load the detector and the scorer a policy needs (sync, heavy)."""
        from trustproxy.pii.detector import get_detector
        from trustproxy.toxicity import load_scorer

        get_detector(policy.nlp_model, policy.language)
        tox = policy.output.toxicity
        if tox.enabled or tox.screen_prompts:
            load_scorer(tox)  # raises ScorerUnavailable: the policy does not start

    def detector(self, policy: Policy) -> Any:
        from trustproxy.pii.detector import get_detector

        return get_detector(policy.nlp_model, policy.language)

    def batcher(self, policy: Policy) -> Any:
        from trustproxy.toxicity import BatchingScorer, load_scorer

        key = policy.output.toxicity.model_dump_json(include={"scorer", "detoxify_variant", "checkpoint",
                                                             "fallback"})
        b = self._batchers.get(key)
        if b is None:
            try:
                scorer = load_scorer(policy.output.toxicity)
            except Exception as exc:  # noqa: BLE001
                raise GuardFailed("The toxicity scorer for this policy is not available.") from exc
            b = self._batchers[key] = BatchingScorer(scorer, executor=self.executor)
        return b

    def scorer_status(self) -> dict[str, dict[str, Any]]:
        from trustproxy.toxicity import describe

        out = {}
        for name, loaded in self.policies.all().items():
            try:
                out[name] = describe(loaded.policy.output.toxicity)
            except Exception as exc:  # noqa: BLE001
                out[name] = {"scorer": None, "error": type(exc).__name__}
        return out

    async def run_guard(self, fn: Any, *args: Any, timeout: float | None = None) -> Any:
        """Run a heavy guard step off the event loop, with a timeout (fail closed)."""
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self.executor, fn, *args)
        try:
            return await asyncio.wait_for(fut, timeout or self.settings.detection_timeout_seconds)
        except asyncio.TimeoutError:
            raise GuardFailed("PII detection timed out; the request was not sent.", code="guard_timeout") from None

    async def close(self) -> None:
        self.ready = False
        if self._watch_task is not None:
            self._watch_task.cancel()
            try:
                await self._watch_task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        if self.audit is not None:
            self.audit.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
