"""Golden examples written inside policy files (``tests:``), checked against a dry run.

``inspect`` is ``trustproxy.pii.masker.inspect_text`` (``(policy, text) -> InspectResult``);
tests pass a fake. Failure messages name entity types and actions; they quote the example's
text only for ``provider_sees`` checks (the officer's own example, shown in the CLI only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trustproxy.policy.loader import LoadedPolicy
from trustproxy.policy.schema import GoldenTest, Policy

Inspect = Callable[[Policy, str], Any]


@dataclass(frozen=True)
class Finding:
    """One detection of a dry run, whatever shape the inspector returns it in."""

    entity_type: str
    action: str
    score: float
    start: int
    end: int


def findings(result: Any) -> list[Finding]:
    out = []
    for d in result.detected:
        if isinstance(d, tuple):
            t, a, s, b, e = d
        else:
            t, a, s, b, e = d.entity_type, d.action, d.score, d.start, d.end
        out.append(Finding(str(t), str(getattr(a, "value", a)), float(s), int(b), int(e)))
    return out


@dataclass
class GoldenResult:
    policy: str
    index: int
    name: str
    failures: list[str] = field(default_factory=list)
    detected: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def check_example(lp: LoadedPolicy, index: int, test: GoldenTest, inspect: Inspect) -> GoldenResult:
    """Run one example and compare with what it expects."""
    res = GoldenResult(lp.name, index, test.name or f"example {index + 1}")
    try:
        result = inspect(lp.policy, test.text)
    except Exception as exc:  # report, do not crash the whole run
        res.failures.append(f"the dry run failed: {type(exc).__name__}")
        return res
    found = findings(result)
    types = sorted({f.entity_type for f in found})
    res.detected = types
    exp = test.expect
    if exp.detected is not None and sorted(set(exp.detected)) != types:
        missing = sorted(set(exp.detected) - set(types))
        extra = sorted(set(types) - set(exp.detected))
        parts = ([f"missed {', '.join(missing)}"] if missing else []) + (
            [f"also detected {', '.join(extra)}"] if extra else [])
        res.failures.append(f"detected: expected {sorted(set(exp.detected))}, got {types} ({'; '.join(parts)})")
    if exp.blocked is not None and bool(result.blocked) != exp.blocked:
        res.failures.append(f"blocked: expected {str(exp.blocked).lower()}, got {str(bool(result.blocked)).lower()}"
                            + (f" (blocked types: {', '.join(result.blocked_types)})" if result.blocked_types else ""))
    if exp.actions:
        for etype, action in exp.actions.items():
            taken = sorted({f.action for f in found if f.entity_type == etype})
            if not taken:
                res.failures.append(f"actions: {etype} was not detected (expected action {action.value})")
            elif taken != [action.value]:
                res.failures.append(f"actions: {etype} expected {action.value}, got {', '.join(taken)}")
    provider = result.provider_text
    if exp.provider_sees is not None and provider != exp.provider_sees:
        res.failures.append(f"provider_sees: expected {exp.provider_sees!r}, got {provider!r}")
    for i, s in enumerate(exp.provider_sees_not or []):
        if s in provider:
            res.failures.append(f"provider_sees_not[{i}]: {s!r} reaches the provider")
    return res


def run_golden(lp: LoadedPolicy, inspect: Inspect) -> list[GoldenResult]:
    return [check_example(lp, i, t, inspect) for i, t in enumerate(lp.policy.tests)]
