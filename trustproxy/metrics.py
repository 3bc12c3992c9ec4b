"""Prometheus metrics on a per-app ``CollectorRegistry`` (never the global one).

Every label value goes through ``safe_label``: a value outside its allow-list, or not matching
``^[A-Za-z0-9_.:/-]{1,64}$``, becomes ``"other"``, so no label can carry user text. Routes and
policies are allow-listed from configuration (``set_allowed`` on reload); until configured they
show as ``other``. Record through the methods below rather than the raw metric objects.

Several workers (``trustproxy serve --workers N``): the supervisor sets ``PROMETHEUS_MULTIPROC_DIR``
before it forks, so every worker's values live in that directory (prometheus-client's
multiprocess mode) and ``render`` on any worker returns the sum over all workers (gauges: the
sum over live workers). One worker: the per-app registry, as before.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

if TYPE_CHECKING:
    from trustproxy.audit import AuditEvent
    from trustproxy.pipeline import Decision

OTHER = "other"
_LABEL_RE = re.compile(r"^[A-Za-z0-9_.:/-]{1,64}$")  # "/" for route names like openai/gpt-4o

DIRECTIONS = frozenset({"in", "out"})
STAGES = frozenset({"detection", "screening", "restore"})
BLOCK_KINDS = frozenset({"entity", "toxicity", "zero_data_retention", "prompt"})
ACTIONS = frozenset({"mask", "redact", "hash", "synthetic", "block", "allow", "flag"})
RELOAD_RESULTS = frozenset({"ok", "error"})
OVERLOAD_REASONS = frozenset({"in_flight", "client", "pool_detection", "pool_output", "pool_toxicity", "audit"})

GUARD_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UPSTREAM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


def safe_label(value: object, allowed: Iterable[str] | None = None) -> str:
    """``value`` if it is a short token (and in ``allowed``, when given), else ``"other"``."""
    if not isinstance(value, str) or not _LABEL_RE.fullmatch(value):
        return OTHER
    if allowed is not None and value not in allowed:
        return OTHER
    return value


class Metrics:
    """All trustproxy metrics, on ``self.registry``. One instance per app."""

    def __init__(self, *, routes: Iterable[str] = (), policies: Iterable[str] = (),
                 namespace: str = "trustproxy") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.routes: frozenset[str] = frozenset(routes)
        self.policies: frozenset[str] = frozenset(policies)
        ns, reg = namespace, self.registry
        self.requests_total = Counter("requests_total", "Requests by route, HTTP status and policy.",
                                      ["route", "status", "policy"], namespace=ns, registry=reg)
        self.entities_total = Counter("entities_total", "Entities detected, by direction, type and action taken.",
                                      ["direction", "entity_type", "action"], namespace=ns, registry=reg)
        self.blocks_total = Counter("blocks_total", "Requests or replies blocked, by kind of reason and policy.",
                                    ["reason", "policy"], namespace=ns, registry=reg)
        self.toxicity_flags_total = Counter("toxicity_flags_total", "Toxicity findings, by category and action.",
                                            ["category", "action"], namespace=ns, registry=reg)
        self.guard_latency_seconds = Histogram("guard_latency_seconds", "Time spent in guards, by stage.",
                                               ["stage"], buckets=GUARD_BUCKETS, namespace=ns, registry=reg)
        self.upstream_latency_seconds = Histogram("upstream_latency_seconds", "Upstream call time, by route.",
                                                  ["route"], buckets=UPSTREAM_BUCKETS, namespace=ns, registry=reg)
        self.active_streams = Gauge("active_streams", "Streaming replies in flight.", namespace=ns, registry=reg,
                                    multiprocess_mode="livesum")
        self.in_flight = Gauge("in_flight_requests", "Requests to /v1 being served (all workers).", namespace=ns,
                               registry=reg, multiprocess_mode="livesum")
        self.overload_total = Counter("overload_total", "Requests refused by admission control (503/429), by reason.",
                                      ["reason"], namespace=ns, registry=reg)
        self.audit_dropped_total = Counter("audit_dropped_total", "Audit events that could not be queued for the "
                                           "writer (should stay 0: admission refuses first).", namespace=ns,
                                           registry=reg)
        self.policy_reloads_total = Counter("policy_reloads_total", "Policy reloads, by result.",
                                            ["result"], namespace=ns, registry=reg)
        self.guard_errors_total = Counter("guard_errors_total", "Guard failures (requests failed closed), by guard.",
                                          ["guard"], namespace=ns, registry=reg)

    def set_allowed(self, *, routes: Iterable[str] | None = None, policies: Iterable[str] | None = None) -> None:
        """Replace the route / policy allow-lists (call on start-up and policy reload)."""
        if routes is not None:
            self.routes = frozenset(routes)
        if policies is not None:
            self.policies = frozenset(policies)

    # --- recording -----------------------------------------------------------------------

    def request(self, route: str, status: int, policy: str) -> None:
        st = str(status) if isinstance(status, int) and 100 <= status <= 599 else OTHER
        self.requests_total.labels(safe_label(route, self.routes), st, safe_label(policy, self.policies)).inc()

    def entity(self, direction: str, entity_type: str, action: str, n: int = 1) -> None:
        if n > 0:
            self.entities_total.labels(safe_label(direction, DIRECTIONS), safe_label(entity_type),
                                       safe_label(action, ACTIONS)).inc(n)

    def block(self, kind: str, policy: str) -> None:
        """``kind``: entity | toxicity | zero_data_retention | prompt (see ``audit.blocked_kind``)."""
        self.blocks_total.labels(safe_label(kind, BLOCK_KINDS), safe_label(policy, self.policies)).inc()

    def toxicity_flag(self, category: str, action: str) -> None:
        self.toxicity_flags_total.labels(safe_label(category), safe_label(action, ACTIONS)).inc()

    def guard_latency(self, stage: str, seconds: float) -> None:
        self.guard_latency_seconds.labels(safe_label(stage, STAGES)).observe(seconds)

    @contextmanager
    def time_stage(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.guard_latency(stage, time.perf_counter() - t0)

    def upstream_latency(self, route: str, seconds: float) -> None:
        self.upstream_latency_seconds.labels(safe_label(route, self.routes)).observe(seconds)

    @contextmanager
    def track_stream(self) -> Iterator[None]:
        """Counts a streaming reply in ``active_streams`` while the block runs."""
        self.active_streams.inc()
        try:
            yield
        finally:
            self.active_streams.dec()

    def policy_reload(self, ok: bool) -> None:
        self.policy_reloads_total.labels("ok" if ok else "error").inc()

    def overload(self, reason: str) -> None:
        self.overload_total.labels(safe_label(reason, OVERLOAD_REASONS)).inc()

    def audit_dropped(self) -> None:
        self.audit_dropped_total.inc()

    def guard_error(self, guard: str) -> None:
        self.guard_errors_total.labels(safe_label(guard)).inc()

    def observe_decisions(self, direction: str, decisions: Iterable[Decision]) -> None:
        """entities_total for decisions with an entity type; toxicity_flags_total for those
        with a category (any action but allow)."""
        for d in decisions:
            if d.entity_type:
                self.entity(direction, d.entity_type, d.action)
            elif d.category and d.action != "allow":
                self.toxicity_flag(d.category, d.action)

    def observe_event(self, event: AuditEvent, *, latencies: bool = True) -> None:
        """requests_total, blocks_total and (unless ``latencies=False``, e.g. when stages are
        timed with ``time_stage``) the latency histograms from one audit event. Entities and
        toxicity findings come from ``observe_decisions``, not from here."""
        self.request(event.route, event.status, event.policy)
        if event.outcome == "blocked" and event.blocked_reason:
            self.block(event.blocked_reason.split(":", 1)[0], event.policy)
        lat = event.latency_ms
        if not latencies:
            return
        if lat.detection:
            self.guard_latency("detection", lat.detection / 1000)
        if lat.screening:
            self.guard_latency("screening", lat.screening / 1000)
        if lat.provider:
            self.upstream_latency(event.route, lat.provider / 1000)

    # --- exposition ----------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """Body and content type for ``GET /metrics`` (all workers' values in multiprocess mode)."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            reg = CollectorRegistry()
            multiprocess.MultiProcessCollector(reg)
            return generate_latest(reg), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
