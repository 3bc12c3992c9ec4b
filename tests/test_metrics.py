"""Metrics: own registry, label sanitising, recording helpers, exposition."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

import trustproxy  # noqa: F401
from trustproxy.audit import AuditEvent
from trustproxy.metrics import Metrics, safe_label
from trustproxy.pipeline import Decision

CANARY = "CANARY_91be"
CANARY_EMAIL = "canary.91be@example.com"


@pytest.mark.parametrize(("value", "allowed", "expected"), [
    ("gpt-4o", None, "gpt-4o"),
    ("gpt-4o", {"gpt-4o"}, "gpt-4o"),
    ("openai/gpt-4o", {"openai/gpt-4o"}, "openai/gpt-4o"),
    ("gpt-4o", {"other-route"}, "other"),
    ("gpt-4o", set(), "other"),
    (CANARY_EMAIL, None, "other"),
    ("has space", None, "other"),
    ("x" * 65, None, "other"),
    ("", None, "other"),
    ("new\nline", None, "other"),
    ("ünïcode", None, "other"),
    (42, None, "other"),
    (None, None, "other"),
])
def test_safe_label(value: object, allowed: set[str] | None, expected: str) -> None:
    assert safe_label(value, allowed) == expected


def test_own_registry() -> None:
    a, b = Metrics(), Metrics()  # a second app must not collide with the first
    a.request("r", 200, "p")
    assert b.registry.get_sample_value("trustproxy_requests_total",
                                       {"route": "other", "status": "200", "policy": "other"}) is None
    assert REGISTRY.get_sample_value("trustproxy_requests_total",
                                     {"route": "other", "status": "200", "policy": "other"}) is None


def test_canary_labels_never_rendered() -> None:
    m = Metrics(routes=["gpt-4o"], policies=["default"])
    m.request(CANARY, 200, CANARY_EMAIL)
    m.request("gpt-4o", 999, "default")
    m.entity("in", CANARY_EMAIL, "mask")
    m.entity(CANARY, "US_SSN", CANARY)
    m.block(CANARY, CANARY)
    m.toxicity_flag(f"insult {CANARY}", "flag")
    m.guard_latency(CANARY, 0.01)
    m.upstream_latency(CANARY, 1.0)
    m.guard_error(CANARY_EMAIL)
    m.observe_decisions("out", [Decision(guard="pii", action="redact", entity_type=CANARY_EMAIL),
                                Decision(guard="tox", action="block", category=CANARY_EMAIL)])
    body, ctype = m.render()
    text = body.decode()
    assert CANARY not in text and "canary" not in text.lower()
    assert 'route="other"' in text and 'status="other"' in text and 'entity_type="other"' in text
    assert ctype.startswith("text/plain")


def test_route_allow_list_follows_reload() -> None:
    m = Metrics()
    m.request("gpt-4o", 200, "default")
    m.set_allowed(routes=["gpt-4o"], policies=["default"])
    m.request("gpt-4o", 200, "default")
    get = m.registry.get_sample_value
    assert get("trustproxy_requests_total", {"route": "other", "status": "200", "policy": "other"}) == 1
    assert get("trustproxy_requests_total", {"route": "gpt-4o", "status": "200", "policy": "default"}) == 1


def test_recording_helpers() -> None:
    m = Metrics(routes=["gpt-4o"], policies=["hr"])
    get = m.registry.get_sample_value
    ev = AuditEvent(request_id="r", route="gpt-4o", policy="hr", status=400, outcome="blocked",
                    blocked_reason="entity:US_SSN",
                    latency_ms={"detection": 5.0, "provider": 250.0, "screening": 2.0, "total": 260.0})
    m.observe_event(ev)
    assert get("trustproxy_requests_total", {"route": "gpt-4o", "status": "400", "policy": "hr"}) == 1
    assert get("trustproxy_blocks_total", {"reason": "entity", "policy": "hr"}) == 1
    assert get("trustproxy_guard_latency_seconds_count", {"stage": "detection"}) == 1
    assert get("trustproxy_guard_latency_seconds_sum", {"stage": "screening"}) == pytest.approx(0.002)
    assert get("trustproxy_upstream_latency_seconds_count", {"route": "gpt-4o"}) == 1
    m.observe_event(ev.model_copy(update={"blocked_reason": "zero_data_retention"}), latencies=False)
    assert get("trustproxy_blocks_total", {"reason": "zero_data_retention", "policy": "hr"}) == 1
    assert get("trustproxy_guard_latency_seconds_count", {"stage": "detection"}) == 1

    m.observe_decisions("in", [Decision(guard="pii", action="mask", entity_type="US_SSN"),
                               Decision(guard="pii", action="mask", entity_type="US_SSN"),
                               Decision(guard="tox", action="flag", category="insult"),
                               Decision(guard="tox", action="allow", category="threat")])
    assert get("trustproxy_entities_total", {"direction": "in", "entity_type": "US_SSN", "action": "mask"}) == 2
    assert get("trustproxy_toxicity_flags_total", {"category": "insult", "action": "flag"}) == 1
    assert get("trustproxy_toxicity_flags_total", {"category": "threat", "action": "allow"}) is None

    with m.time_stage("restore"):
        pass
    assert get("trustproxy_guard_latency_seconds_count", {"stage": "restore"}) == 1
    m.policy_reload(True)
    m.policy_reload(False)
    assert get("trustproxy_policy_reloads_total", {"result": "error"}) == 1
    m.guard_error("detector")
    assert get("trustproxy_guard_errors_total", {"guard": "detector"}) == 1


def test_active_streams_gauge_returns_to_zero_on_error() -> None:
    m = Metrics()
    with m.track_stream():
        assert m.registry.get_sample_value("trustproxy_active_streams") == 1
    with pytest.raises(RuntimeError), m.track_stream():
        raise RuntimeError("boom")
    assert m.registry.get_sample_value("trustproxy_active_streams") == 0
