"""Process-wide resources of a running proxy: provider, policies, models, guard pools, audit, metrics.

Loaded once at start-up (aiohttp cleanup context); nothing request-specific lives here.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from trustproxy.errors import GuardFailed, PolicyError
from trustproxy.execution import Guards
from trustproxy.policy.schema import Policy
from trustproxy.settings import Settings

log = logging.getLogger("trustproxy.runtime")


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # guard work runs in bounded pools (trustproxy.execution); start-up work in the loop's default executor
        self.guards = Guards(settings.execution, on_refused=self._refused)
        self.hash_key = (settings.hash_key or "").encode("utf-8")
        self.provider: Any = None
        self.policies: Any = None
        self.metrics: Any = None
        self.audit: Any = None
        self._batchers: dict[Any, Any] = {}
        self._watch_task: asyncio.Task[None] | None = None
        self.ready = False

    @classmethod
    async def start(cls, settings: Settings) -> "Runtime":
        rt = cls(settings)
        await rt._start()
        return rt

    async def _start(self) -> None:
        from trustproxy.metrics import Metrics
        from trustproxy.policy.store import PolicyStore
        from trustproxy.providers import Provider

        loop = asyncio.get_running_loop()
        from trustproxy.audit import build_audit_log

        from trustproxy.audit import AuditWriter

        self.audit = AuditWriter(build_audit_log(self.settings.audit, chain_id=self.settings_chain_id()),
                                 capacity=self.settings.execution.audit_buffer, on_drop=self._audit_dropped)
        self.policies = PolicyStore(str(self.settings.resolved_policy_dir()), default=self.settings.default_policy,
                                    required=self._policy_names(), on_reload=self._on_reload)
        self.metrics = Metrics(routes=self.settings.routes, policies=self.policies.policies)
        self.provider = await loop.run_in_executor(None, Provider, self.settings)
        # load every model the policies need now, not on the first request
        for loaded in self.policies.policies.values():
            await loop.run_in_executor(None, self.prepare_policy, loaded.policy)
        self._watch_task = asyncio.create_task(self.policies.watch())
        self.ready = True
        for name, info in self.scorer_status().items():
            log.info("policy %s: toxicity scorer %s", name, info.get("scorer"))

    def _policy_names(self) -> set[str]:
        return {c.policy for c in self.settings.clients if c.policy} | \
               {r.policy for r in self.settings.routes.values() if r.policy}

    def _on_reload(self, ok: bool) -> None:
        """Called from the watcher's thread: count the reload and load any model a new policy
        needs now, so no request loads one on the event loop."""
        if self.metrics is not None:
            self.metrics.policy_reload(ok)
        if not ok or self.policies is None:
            return
        if self.metrics is not None:
            self.metrics.set_allowed(policies=self.policies.policies)
        for loaded in self.policies.policies.values():
            try:
                self.prepare_policy(loaded.policy)
            except Exception as exc:  # noqa: BLE001 - its requests will fail closed with guard_failed
                log.error("policy %s: cannot load what it needs (%s)", loaded.name, type(exc).__name__)

    def prepare_policy(self, policy: Policy) -> None:
        """Load the detector and the scorer a policy needs (sync, heavy)."""
        from trustproxy.pii.detector import get_detector
        from trustproxy.toxicity import load_scorer

        get_detector(policy.nlp_model, policy.language)
        if not self.hash_key and any(r.action.value == "hash" for r in policy.entities):
            raise PolicyError([f"policy '{policy.name}' uses the hash action but no hash key is configured "
                               "(set TRUSTPROXY_HASH_KEY)"])
        tox = policy.output.toxicity
        if tox.enabled or tox.screen_prompts:
            load_scorer(tox)  # raises ScorerUnavailable: the policy does not start

    def detector(self, policy: Policy) -> Any:
        from trustproxy.pii.detector import get_detector

        return get_detector(policy.nlp_model, policy.language)

    def batcher(self, policy: Policy) -> Any:
        from trustproxy.toxicity import BatchingScorer, load_scorer

        key = policy.output.toxicity.model_dump_json(include={"scorer", "detoxify_variant", "checkpoint",
                                                             "huggingface_config_path", "fallback"})
        b = self._batchers.get(key)
        if b is None:
            try:
                scorer = load_scorer(policy.output.toxicity)
            except GuardFailed:
                raise  # ScorerUnavailable names the path, never user text
            except Exception as exc:  # noqa: BLE001
                raise GuardFailed("The toxicity scorer for this policy is not available.") from exc
            ex = self.settings.execution
            b = self._batchers[key] = BatchingScorer(
                scorer, executor=self.guards.toxicity.executor, timeout=ex.scoring_timeout_seconds,
                max_queue=ex.toxicity.queue, retry_after=ex.retry_after_seconds, on_refused=self._refused)
        return b

    def scorer_status(self) -> dict[str, dict[str, Any]]:
        from trustproxy.toxicity.commands import describe

        out = {}
        for name, loaded in self.policies.policies.items():
            try:
                out[name] = describe(loaded.policy.output.toxicity)
            except Exception as exc:  # noqa: BLE001
                out[name] = {"scorer": None, "error": type(exc).__name__}
        return out

    def settings_chain_id(self) -> str | None:
        """This worker's audit chain id (``w<N>``) under ``serve --workers N > 1``, else None."""
        from trustproxy.server.workers import worker_id

        wid = worker_id()
        return None if wid is None else f"w{wid}"

    def _refused(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.overload(reason)

    def _audit_dropped(self) -> None:
        if self.metrics is not None:
            self.metrics.audit_dropped()

    async def run_guard(self, fn: Any, *args: Any, timeout: float | None = None, detector: Any = None,
                        pool: str = "detection") -> Any:
        """Run a guard step in a bounded pool with a timeout (fail closed; the job is abandoned).

        With ``detector``, ``fn`` runs inside one fair turn at that detector."""
        p = self.guards.output if pool == "output" else self.guards.detection
        call = fn
        if detector is not None:
            gate = self.guards.gate(detector)

            def call(*a: Any) -> Any:
                with gate.turn():
                    return fn(*a)
        what = "Output screening" if pool == "output" else "PII detection"
        return await p.run(call, *args, timeout=timeout or self.settings.detection_timeout_seconds, what=what)

    async def close(self) -> None:
        self.ready = False
        if self._watch_task is not None:
            self._watch_task.cancel()
            try:
                await self._watch_task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        if self.provider is not None:
            await self.provider.close()
        for b in self._batchers.values():
            b.close()
        if self.audit is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.audit.close)
        self.guards.shutdown()

    def observe(self, ctx: Any) -> None:
        """One audit event and the metrics of a finished request (types, counts, scores only)."""
        from trustproxy.audit import AuditEvent

        from trustproxy.pii.masker import entity_plan

        m = self.metrics
        m.request(ctx.route, ctx.status, ctx.policy_name)
        actions = entity_plan(ctx.policy)[2]  # the same table the masker applied
        for t, n in ctx.mask.entities.items():
            m.entity("in", t, actions[t].value if t in actions else "mask", n)
        for t, n in ctx.entities_out.items():
            m.entity("out", t, ctx.policy.output.pii.action, n)
        if ctx.blocked_reason:
            m.block(ctx.blocked_reason.split(":", 1)[0], ctx.policy_name)
        for flag in ctx.flags:
            m.toxicity_flag(flag.split(":", 1)[-1], "flag")
        if "provider" in ctx.latency:
            m.upstream_latency(ctx.route, ctx.latency["provider"] / 1000)
        if "screening" in ctx.latency:
            m.guard_latency("screening", ctx.latency["screening"] / 1000)
        tox = None
        if ctx.policy.output.toxicity.enabled:
            scorer = self.scorer_status().get(ctx.policy_name, {}).get("scorer") or "none"
            tox = {"scorer": _name_label(scorer), "max_scores": ctx.tox_max, "decision": ctx.tox_decision}
        try:
            self._emit(ctx, AuditEvent, tox)
        except Exception as exc:  # noqa: BLE001 - the reply already left; record that the sink failed
            log.error("audit event failed request_id=%s kind=%s", ctx.request_id, type(exc).__name__)

    def observe_refusal(self, request_id: str, client: Any, status: int, code: str | None, *,
                        outcome: str = "error", route: str = "unknown", loaded: Any = None) -> None:
        """Audit event and metric for a request that had no chat route: refused at the edge, or
        a dry run (``/v1/trust/inspect``)."""
        from trustproxy.audit import AuditEvent

        try:
            default = loaded or self.policies.get(self.settings.default_policy)
            self.metrics.request(route, status, default.name)
            self.audit.emit(AuditEvent(
                request_id=request_id, tenant=(client.tenant or client.name) if client else None,
                route=route, policy=default.name, policy_version=default.version, status=status,
                outcome=outcome, error_code=code if code and re.fullmatch(r"[a-z0-9_]{1,64}", code) else None))
        except Exception as exc:  # noqa: BLE001
            log.error("audit event failed request_id=%s kind=%s", request_id, type(exc).__name__)

    def _emit(self, ctx: Any, AuditEvent: Any, tox: Any) -> None:
        actions = {k: v for k, v in ctx.actions.items() if k in _ACTIONS}
        event = AuditEvent(
            request_id=ctx.request_id, tenant=(ctx.client.tenant or ctx.client.name) if ctx.client else None,
            route=ctx.route, provider=self.provider.provider_name(ctx.route), policy=ctx.policy_name,
            policy_version=ctx.policy_version, stream=ctx.stream, status=ctx.status, outcome=ctx.result,
            blocked_reason=ctx.blocked_reason, entities_in=dict(ctx.mask.entities),
            entities_out=dict(ctx.entities_out), actions=actions, toxicity=tox,
            flags=sorted(set(ctx.flags)),
            latency_ms={k: ctx.latency.get(k, 0.0) for k in ("detection", "provider", "screening", "total")},
            error_code=ctx.error_code)
        self.audit.emit(event)


_ACTIONS = {"mask", "redact", "hash", "synthetic", "block", "allow", "flag"}


def _name_label(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.:-]", "_", name)[:64]
