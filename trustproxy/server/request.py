"""Per-request state: chosen policy, the Vault, decisions, timings; one audit event at the end."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from trustproxy.doors.masking import IdentityMap
from trustproxy.errors import (GuardFailed, InvalidRequest, NotFound, PolicyBlocked, TrustProxyError,
                               ZeroRetentionRequired)
from trustproxy.pii.masker import MaskResult
from trustproxy.pipeline import StreamFilter
from trustproxy.server.app import now_ms
from trustproxy.server.response import ResponseScreen
from trustproxy.settings import Client

log = logging.getLogger("trustproxy.request")


@dataclass
class RequestContext:
    rt: Any
    request_id: str
    client: Client | None
    route: str
    stream: bool
    loaded: Any
    started: float = field(default_factory=now_ms)
    vault: Any = None
    idmap: IdentityMap = field(default_factory=IdentityMap)  # identifier-safe replacement -> original
    mask: MaskResult = field(default_factory=MaskResult)
    entities_out: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    latency: dict[str, float] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    tox_max: dict[str, float] = field(default_factory=dict)
    tox_decision: str = "pass"
    blocked_reason: str | None = None
    status: int = 200
    result: str = "ok"
    error_code: str | None = None
    _closed: bool = False
    _screen: Any = None

    @classmethod
    def open(cls, rt: Any, request_id: str, client: Client | None, model: str, *, stream: bool) -> "RequestContext":
        if model not in rt.settings.routes:
            raise NotFound("The requested model does not exist on this proxy; see GET /v1/models.",
                           param="model", code="model_not_found")
        route = rt.settings.routes[model]
        loaded = rt.policies.select(tenant_policy=client.policy if client else None, route_policy=route.policy)
        return cls(rt=rt, request_id=request_id, client=client, route=model, stream=stream, loaded=loaded)

    @property
    def policy(self) -> Any:
        return self.loaded.policy

    @property
    def policy_name(self) -> str:
        return self.loaded.policy.name

    @property
    def policy_version(self) -> str:
        return self.loaded.version

    @property
    def output_screened(self) -> bool:
        """Whether the policy screens reply text (then token logprobs cannot be returned)."""
        out = self.policy.output
        return bool(out.toxicity.enabled or (out.pii.enabled and out.pii.entities and out.pii.action != "allow"))

    # -- request side --------------------------------------------------------------------
    async def screen_request(self, body: dict[str, Any]) -> None:
        from trustproxy.inspection import adopt, check_budget, mask_job

        rt = self.rt
        if (body.get("logprobs") or body.get("top_logprobs")) and self.output_screened:
            raise InvalidRequest(f"Policy '{self.policy_name}' screens the model's replies; token logprobs would "
                                 "show the unscreened text, so they are not returned.", param="logprobs",
                                 code="logprobs_not_allowed")
        policy, version = self.policy, self.policy_version
        check_budget(body, policy)  # 413 uninspectable before any work is queued
        t0 = now_ms()
        try:
            # the job masks its own copy into its own Vault and IdentityMap; adopted here only if
            # it finished in time (an abandoned job never writes into this request's state)
            detector = rt.detector(policy)
            done = await rt.guards.detection.run(
                mask_job, body, policy, detector, rt.guards.gate(detector), rt.hash_key, version,
                rt.settings.execution.detection_chunk_chars, timeout=rt.settings.detection_timeout_seconds,
                what="PII detection")
            adopt(body, done)
            self.vault, self.mask, self.idmap = done.vault, done.result, done.idmap
        except PolicyBlocked as exc:
            self.mask = getattr(exc, "result", self.mask)
            raise
        except TrustProxyError:
            raise
        except Exception as exc:  # noqa: BLE001 - fail closed, name no value
            log.error("detector failed request_id=%s kind=%s", self.request_id, type(exc).__name__)
            rt.metrics.guard_errors_total.labels(guard="pii").inc()
            raise GuardFailed("PII detection failed; the request was not sent.") from None
        finally:
            self.latency["detection"] = round(now_ms() - t0, 3)
            rt.metrics.guard_latency_seconds.labels(stage="detection").observe(self.latency["detection"] / 1000)
        self.actions.update(self.mask.actions)
        self._check_retention()
        await self._screen_prompt(body)

    def _check_retention(self) -> None:
        required = set(self.policy.retention.require_zero_data_retention_for)
        hit = sorted(required & self.mask.sensitive_types)
        if hit and not self.rt.settings.routes[self.route].zero_data_retention:
            raise ZeroRetentionRequired(
                f"Policy '{self.policy_name}' requires a zero-data-retention route for requests carrying "
                f"{', '.join(hit)}; route '{self.route}' is not marked zero_data_retention.")

    async def _screen_prompt(self, body: dict[str, Any]) -> None:
        tox = self.policy.output.toxicity
        if not tox.screen_prompts:
            return
        from trustproxy.toxicity import screen_prompt

        texts = []
        for m in body.get("messages", []):
            if m.get("role") == "user":
                c = m.get("content")
                texts.append(c if isinstance(c, str) else "".join(p.get("text", "") for p in c or []))
        try:
            await screen_prompt(self.rt.batcher(self.policy), tox, [t for t in texts if t])
        except PolicyBlocked as exc:
            self.blocked_reason = "prompt:toxicity"
            raise PolicyBlocked(exc.message, code="prompt_blocked") from None

    # -- response side -------------------------------------------------------------------
    def response_screen(self) -> ResponseScreen:
        from trustproxy.pii.output import OutputPIIFilter
        from trustproxy.pii.restore import StreamRestorer
        from trustproxy.server.json_context import JsonStringRestorer
        from trustproxy.toxicity import ToxicityFilter

        policy = self.policy
        rt = self.rt
        vault = self.vault
        out_cfg = policy.output.pii
        detector = rt.detector(policy)
        hold = policy.streaming.max_hold_back_chars

        async def detect_out(text: str) -> list[Any]:
            return await rt.run_guard(lambda: detector.detect(
                text, entities=list(out_cfg.entities), thresholds={}, default_threshold=out_cfg.threshold,
                allow_list=policy.allow_list, namespace="out:" + self.policy_version),
                detector=detector, pool="output")

        gate = rt.guards.gate(detector)

        def detect_out_sync(text: str) -> list[Any]:  # in an output pool thread, one fair turn per window
            with gate.turn():
                return detector.detect(
                    text, entities=list(out_cfg.entities), thresholds={}, default_threshold=out_cfg.threshold,
                    allow_list=policy.allow_list, namespace="out:" + self.policy_version)

        async def offload(fn: Any) -> str:
            return await rt.guards.output.run(fn, timeout=rt.settings.detection_timeout_seconds,
                                              what="Output screening")

        def content_filters() -> list[StreamFilter]:
            filters: list[StreamFilter] = []
            if policy.output.toxicity.enabled:
                filters.append(ToxicityFilter(rt.batcher(policy), policy.output.toxicity))
            if out_cfg.enabled and out_cfg.entities and out_cfg.action != "allow":
                filters.append(OutputPIIFilter(detect_out, vault, action=out_cfg.action, hold_back=hold,
                                               entities=list(out_cfg.entities), detect_sync=detect_out_sync,
                                               offload=offload))
            filters.append(JsonStringRestorer(vault))  # placeholders inside JSON the model wrote: escaped
            filters.append(StreamRestorer(vault))
            return filters

        def tool_filters() -> list[StreamFilter]:
            # replacements are <TYPE> / <TYPE_OUT_n>: no JSON-special characters, the JSON stays valid
            filters: list[StreamFilter] = []
            if out_cfg.enabled and out_cfg.entities and out_cfg.action != "allow":
                filters.append(OutputPIIFilter(detect_out, vault, action=out_cfg.action, hold_back=hold,
                                               entities=list(out_cfg.entities), detect_sync=detect_out_sync,
                                               offload=offload))
            filters.append(StreamRestorer(vault, json_escape=True))
            return filters

        self._screen = ResponseScreen(content_filters, tool_filters, self.idmap.restore,
                                      keep_logprobs=not self.output_screened)
        return self._screen

    def collect(self, screen: ResponseScreen) -> None:
        """Gather decisions (types, categories, scores only) from the response filters."""
        for f in screen.all_filters:
            for d in getattr(f, "decisions", []) or []:
                if d.guard in ("toxicity",) or d.category:
                    if d.action == "flag":
                        self.flags.append(f"toxicity:{d.category}")
                    if d.action == "block" and d.category and (self.blocked_reason or "").startswith("toxicity"):
                        self.blocked_reason = f"toxicity:{d.category}"
                    self._tox(d.action)
                elif d.entity_type:
                    self.entities_out[d.entity_type] += 1
                    self.actions[f"output_{d.action}"] += 1
            for cat, score in (getattr(f, "max_scores", None) or {}).items():
                self.tox_max[cat] = max(self.tox_max.get(cat, 0.0), float(score))

    def _tox(self, action: str) -> None:
        order = ["pass", "flag", "redact", "block"]
        if action in order and order.index(action) > order.index(self.tox_decision):
            self.tox_decision = action

    def record_content_block(self, exc: PolicyBlocked) -> None:
        self.blocked_reason = "toxicity:toxicity"
        self._tox("block")

    # -- outcome -------------------------------------------------------------------------
    def outcome(self, result: str, status: int) -> None:
        self.result, self.status = result, status

    def outcome_from_error(self, err: TrustProxyError) -> None:
        self.status = err.status
        self.error_code = err.code
        if isinstance(err, PolicyBlocked):
            self.result = "blocked"
            if not self.blocked_reason:
                self.blocked_reason = "entity:" + sorted(self.mask.blocked_types)[0] \
                    if self.mask.blocked_types else None
        elif isinstance(err, ZeroRetentionRequired):
            self.result, self.blocked_reason = "blocked", "zero_data_retention"
        else:
            self.result = "error"

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.latency["total"] = round(now_ms() - self.started, 3)
        if self._screen is not None:  # scoring still queued for this reply stops with it
            for f in self._screen.all_filters:
                cancel = getattr(f, "cancel", None)
                if cancel is not None:
                    cancel()
        try:
            self.rt.observe(self)
        finally:
            if self.vault is not None:
                self.vault.clear()  # the Vault lives only as long as the request
            self.vault = None
            self.idmap.clear()
