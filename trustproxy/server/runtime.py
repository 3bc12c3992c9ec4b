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
        self._batchers: dict[str, Any] = {}
        self._detectors: dict[tuple[str, str], Any] = {}
        self._scorer_info: dict[tuple[str, str], dict[str, Any]] = {}
        self._coverage: dict[tuple[str, str], dict[str, Any]] = {}
        self._watch_task: asyncio.Task[None] | None = None
        self.ready = False

    @classmethod
    async def start(cls, settings: Settings) -> "Runtime":
        rt = cls(settings)
        await rt._start()
        return rt

    async def _start(self) -> None:
        from trustproxy.metrics import Metrics
        from trustproxy.policy.registry import quiet_presidio_language_warnings
        from trustproxy.policy.store import PolicyStore
        from trustproxy.providers import Provider

        loop = asyncio.get_running_loop()
        from trustproxy.audit import build_audit_log

        from trustproxy.audit import AuditWriter

        quiet_presidio_language_warnings()
        self.audit = AuditWriter(build_audit_log(self.settings.audit, chain_id=self.settings_chain_id()),
                                 capacity=self.settings.execution.audit_buffer, on_drop=self._audit_dropped)
        policy_dir = self.settings.resolved_policy_dir()
        log.info("policies from %s (%s)", policy_dir, self.settings.policy_dir_source())
        # load, compile and prepare every policy (models loaded and smoke-tested) off the loop,
        # before the first request; a policy that cannot be prepared stops the start-up
        self.policies = await loop.run_in_executor(None, lambda: PolicyStore(
            str(policy_dir), default=self.settings.default_policy, required=self._policy_names(),
            on_reload=self._on_reload, prepare=self.prepare_policy))
        self.metrics = Metrics(routes=self.settings.routes, policies=self.policies.policies)
        self.provider = await loop.run_in_executor(None, Provider, self.settings)
        self._watch_task = asyncio.create_task(self.policies.watch())
        self.ready = True

    def _policy_names(self) -> set[str]:
        return {c.policy for c in self.settings.clients if c.policy} | \
               {r.policy for r in self.settings.routes.values() if r.policy}

    def _on_reload(self, ok: bool) -> None:
        """Called from the watcher's thread after a reload attempt. The new set was prepared
        before it was swapped in (or it was refused); only the metrics are left to update."""
        if self.metrics is not None:
            self.metrics.policy_reload(ok)
            if ok and self.policies is not None:
                self.metrics.set_allowed(policies=self.policies.policies)

    # ---- preparing policies (sync, heavy: only ever called off the event loop) -----------------
    def prepare_policy(self, loaded: Any) -> Any:
        """Compile ``loaded`` and prepare it: its detector and scorer loaded and smoke-tested
        (``trustproxy.policy.compiled``). Raises ``PolicyFileError``; the store then keeps the
        previous set in force."""
        from trustproxy.policy.compiled import compile_policy, prepare
        from trustproxy.toxicity.commands import describe

        compiled = prepare(compile_policy(loaded, hash_key=self.hash_key), _Models(self))
        tox = compiled.policy.output.toxicity
        self._scorer_info[(compiled.name, compiled.version)] = describe(tox) if tox.enabled else \
            {"enabled": False, "ready": True, "scorer": None}
        from trustproxy.pii.languages import coverage

        self._coverage[(compiled.name, compiled.version)] = coverage(compiled.policy)
        return compiled

    def load_detector(self, nlp_model: str, language: str) -> Any:
        """Load (once) and register a detector for requests to find."""
        from trustproxy.pii.detector import get_detector

        det = get_detector(nlp_model, language)
        self._detectors[(nlp_model, language)] = det
        return det

    def load_scorer(self, cfg: Any) -> Any:
        """Load (once) the scorer and register its batcher for requests to find."""
        from trustproxy.toxicity import BatchingScorer, load_scorer

        scorer = load_scorer(cfg)
        key = _scorer_key(cfg)
        if key not in self._batchers:
            ex = self.settings.execution
            self._batchers[key] = BatchingScorer(
                scorer, executor=self.guards.toxicity.executor, timeout=ex.scoring_timeout_seconds,
                max_queue=ex.toxicity.queue, retry_after=ex.retry_after_seconds, on_refused=self._refused)
        return scorer

    # ---- what requests use: lookups only (never a model load, never a loading lock) ------------
    def detector(self, policy: Policy) -> Any:
        det = self._detectors.get((policy.nlp_model, policy.language))
        if det is None:  # fail closed: a policy that serves was prepared, so this is a bug
            log.error("no prepared detector for policy %s", policy.name)
            raise GuardFailed("PII detection is not ready for this policy; the request was not sent.")
        return det

    def batcher(self, policy: Policy) -> Any:
        b = self._batchers.get(_scorer_key(policy.output.toxicity))
        if b is None:
            log.error("no prepared toxicity scorer for policy %s", policy.name)
            raise GuardFailed("The toxicity scorer for this policy is not available.")
        return b

    def language_status(self) -> dict[str, dict[str, Any]]:
        """Per policy: which languages are covered by what (a model, patterns, a block rule)."""
        return {name: self._coverage.get((name, cp.version), {})
                for name, cp in self.policies.policies.items()}

    def scorer_status(self) -> dict[str, dict[str, Any]]:
        """The active toxicity scorer per policy, as found when it was prepared (no loading)."""
        return {name: self._scorer_info.get((name, cp.version), {"scorer": None})
                for name, cp in self.policies.policies.items()}

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


class _Models:
    """``trustproxy.policy.compiled.Models`` over a runtime: what ``prepare`` loads is
    registered where requests look it up."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def detector(self, nlp_model: str, language: str) -> Any:
        return self.rt.load_detector(nlp_model, language)

    def scorer(self, cfg: Any) -> Any:
        return self.rt.load_scorer(cfg)


def _scorer_key(cfg: Any) -> str:
    return str(cfg.model_dump_json(include={"scorer", "detoxify_variant", "checkpoint",
                                            "huggingface_config_path", "fallback"}))


_ACTIONS = {"mask", "redact", "hash", "synthetic", "block", "allow", "flag"}


def _name_label(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.:-]", "_", name)[:64]
