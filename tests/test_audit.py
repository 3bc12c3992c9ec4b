"""Audit events: shape, hash chain, tamper detection, rotation, restart, no raw text."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import trustproxy  # noqa: F401  (offline env first)
from trustproxy.audit import (GENESIS, AuditEvent, AuditEventInvalid, AuditLog, FileSink, OTelSink,
                              StdoutSink, blocked_kind, build_audit_log, canonical_json, event_hash,
                              rotated_files, verify, verify_file)

CANARY = "CANARY_7f3a9c"
CANARY_EMAIL = "canary.7f3a9c@example.com"


def full_event(i: int = 0, **over: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "time": "2025-01-02T03:04:05.678Z", "request_id": f"req-{i}", "tenant": "acme",
        "route": "gpt-4o", "provider": "openai", "policy": "hr", "policy_version": "v3",
        "stream": True, "status": 400, "outcome": "blocked", "blocked_reason": "entity:US_SSN",
        "entities_in": {"US_SSN": 1, "EMAIL_ADDRESS": 2}, "entities_out": {"PERSON": 1},
        "actions": {"mask": 2, "block": 1},
        "toxicity": {"scorer": "detoxify", "max_scores": {"insult": 0.91, "threat": 0.02}, "decision": "flag"},
        "flags": ["output_pii_redacted"],
        "latency_ms": {"detection": 4.2, "provider": 120.5, "screening": 3.1, "total": 130.0},
        "error_code": None,
    }
    ev.update(over)
    return ev


def write_events(path: Path, n: int, **kw: Any) -> AuditLog:
    log = AuditLog([FileSink(str(path), **kw)])
    for i in range(n):
        log.emit(full_event(i))
    return log


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


# --------------------------------------------------------------------------- shape

def test_one_line_per_emit_with_all_fields(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    log = AuditLog([FileSink(str(p))])
    out = log.emit(full_event())
    [line] = lines(p)
    data = json.loads(line)
    assert set(data) == set(AuditEvent.model_fields)
    assert data["prev"] == GENESIS and data["hash"] == event_hash(data) == out.hash
    assert line == canonical_json(data) + "\n"
    assert AuditEvent.model_validate(data).model_dump(exclude={"prev", "hash"}) == \
        AuditEvent.model_validate(full_event()).model_dump(exclude={"prev", "hash"})


def test_defaults_time_and_minimal_event(tmp_path: Path) -> None:
    ev = AuditEvent(request_id="r1", route="gpt-4o", policy="default", status=200, outcome="ok")
    assert ev.time.endswith("Z") and ev.entities_in == {} and ev.toxicity is None
    assert blocked_kind("entity:US_SSN") == "entity" and blocked_kind("zero_data_retention") == "zero_data_retention"
    assert blocked_kind(None) is None


def test_stdout_sink(capsys: pytest.CaptureFixture[str]) -> None:
    AuditLog([StdoutSink()]).emit(full_event())
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and json.loads(out)["request_id"] == "req-0"


def test_otel_sink_optional() -> None:
    if OTelSink.available():
        pytest.skip("opentelemetry installed; the unavailable path cannot be exercised")
    with pytest.raises(RuntimeError):
        OTelSink()


# --------------------------------------------------------------------------- chain

def test_chain_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "a.jsonl"
    write_events(p, 5)
    res = verify_file([str(p)])
    assert res.ok and res.events == 5 and res.first_broken is None
    assert verify([str(p)]) == 0
    assert capsys.readouterr().out == "ok: 5 events\n"


def _mutate(v: Any) -> Any:
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return v + 1
    if isinstance(v, float):
        return v + 1.5
    if isinstance(v, str):
        return v[:-1] + ("1" if v[-1] != "1" else "2")
    if isinstance(v, dict):
        return {**{k: _mutate(x) for k, x in v.items()}, "X": 1} if v else {"X": 1}
    if isinstance(v, list):
        return [*v, "x"]
    return "x"


N = 4


@pytest.mark.parametrize("field", sorted(AuditEvent.model_fields))
@pytest.mark.parametrize("lineno", range(1, N + 1))
def test_editing_any_field_of_any_line_is_caught(tmp_path: Path, field: str, lineno: int) -> None:
    p = tmp_path / "a.jsonl"
    write_events(p, N)
    ls = lines(p)
    data = json.loads(ls[lineno - 1])
    data[field] = _mutate(data[field])
    ls[lineno - 1] = canonical_json(data) + "\n"
    p.write_text("".join(ls))
    res = verify_file([str(p)])
    assert not res.ok and res.first_broken == lineno and res.file == str(p)
    assert res.events == lineno - 1


@pytest.mark.parametrize("lineno", range(1, N))  # deleting the last line needs the head: below
def test_deleting_a_line_is_caught(tmp_path: Path, lineno: int) -> None:
    p = tmp_path / "a.jsonl"
    write_events(p, N)
    ls = lines(p)
    del ls[lineno - 1]
    p.write_text("".join(ls))
    res = verify_file([str(p)])
    assert not res.ok and res.first_broken == lineno and "prev" in (res.reason or "")


@pytest.mark.parametrize("lineno", range(1, N))
def test_reordering_is_caught(tmp_path: Path, lineno: int) -> None:
    p = tmp_path / "a.jsonl"
    write_events(p, N)
    ls = lines(p)
    ls[lineno - 1], ls[lineno] = ls[lineno], ls[lineno - 1]
    p.write_text("".join(ls))
    res = verify_file([str(p)])
    assert not res.ok and res.first_broken == lineno


def test_inserted_copy_is_caught(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    write_events(p, N)
    ls = lines(p)
    ls.insert(2, ls[0])
    p.write_text("".join(ls))
    assert verify_file([str(p)]).first_broken == 3


@pytest.mark.parametrize("lineno", range(1, N + 1))
def test_truncation_inside_a_line_is_caught(tmp_path: Path, lineno: int) -> None:
    p = tmp_path / "a.jsonl"
    write_events(p, N)
    ls = lines(p)
    p.write_text("".join(ls[:lineno - 1]) + ls[lineno - 1][: len(ls[lineno - 1]) // 2])
    res = verify_file([str(p)])
    assert not res.ok and res.first_broken == lineno and "JSON" in (res.reason or "")


def test_truncated_whole_lines_caught_with_chain_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p, state = tmp_path / "a.jsonl", tmp_path / "state.json"
    log = AuditLog([FileSink(str(p))], chain_state_path=str(state))
    for i in range(N):
        log.emit(full_event(i))
    ls = lines(p)
    p.write_text("".join(ls[:2]))
    assert verify_file([str(p)]).ok  # without the head, a clean cut at a line end is invisible
    head = json.loads(state.read_text())["head"]
    res = verify_file([str(p)], head=head)
    assert not res.ok and res.first_broken == 3
    assert verify([str(p)], state_path=str(state)) == 1
    assert capsys.readouterr().out.startswith(f"broken at {p}:3: ")


def test_cli_broken_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "a.jsonl"
    write_events(p, 3)
    ls = lines(p)
    p.write_text(ls[0] + ls[2])
    assert verify([str(p)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"broken at {p}:2: ") and out.count("\n") == 1
    assert verify([str(tmp_path / "missing.jsonl")]) == 1


# --------------------------------------------------------------------------- rotation, restart

def test_rotation_keeps_chain_verifiable(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    log = write_events(p, 12, max_bytes=1500, backups=10)
    sink = log.sinks[0]
    assert isinstance(sink, FileSink)
    files = sink.files()
    assert len(files) > 3 and files[-1] == str(p) and files[0].endswith(f".{len(files) - 1}")
    res = verify_file(files)
    assert res.ok and res.events == 12
    # a rotated-away head: the rest verifies as a partial chain, not as a full one
    Path(files[0]).unlink()
    assert verify_file(files[1:], start_prev=None).ok
    assert verify_file(files[1:]).first_broken == 1
    # files in the wrong order are caught
    assert not verify_file(list(reversed(files[1:])), start_prev=None).ok


def test_rotation_deletes_beyond_backups(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    log = write_events(p, 12, max_bytes=1000, backups=2)
    sink = log.sinks[0]
    assert isinstance(sink, FileSink)
    assert [Path(f).name for f in sink.files()] == ["a.jsonl.2", "a.jsonl.1", "a.jsonl"]
    assert verify_file(sink.files(), start_prev=None).ok


def test_restart_continues_the_chain(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    log = write_events(p, 3)
    head = log.head
    log.close()
    log2 = AuditLog([FileSink(str(p))])
    assert log2.head == head
    assert log2.emit(full_event(3)).prev == head
    res = verify_file([str(p)])
    assert res.ok and res.events == 4


def test_restart_across_rotation(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    log = write_events(p, 5, max_bytes=1000, backups=10)
    log.close()
    log2 = AuditLog([FileSink(str(p), max_bytes=1000, backups=10)])
    log2.emit(full_event(5))
    sink = log2.sinks[0]
    assert isinstance(sink, FileSink)
    assert verify_file(sink.files()).events == 6


def test_restart_from_state_with_stdout_only(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    buf = io.StringIO()
    log = AuditLog([StdoutSink(buf)], chain_state_path=str(state))
    log.emit(full_event(0))
    log.emit(full_event(1))
    log2 = AuditLog([StdoutSink(buf)], chain_state_path=str(state))
    log2.emit(full_event(2))
    p = tmp_path / "captured.jsonl"
    p.write_text(buf.getvalue())
    assert verify_file([str(p)], head=json.loads(state.read_text())["head"]).events == 3


def test_restart_after_truncation_shows_the_gap(tmp_path: Path) -> None:
    p, state = tmp_path / "a.jsonl", tmp_path / "state.json"
    log = AuditLog([FileSink(str(p))], chain_state_path=str(state))
    for i in range(4):
        log.emit(full_event(i))
    log.close()
    p.write_text("".join(lines(p)[:2]))  # someone cut the last two events
    log2 = AuditLog([FileSink(str(p))], chain_state_path=str(state))
    log2.emit(full_event(4))
    assert verify_file([str(p)]).first_broken == 3


def test_crash_between_sink_and_state_is_not_a_break(tmp_path: Path) -> None:
    p, state = tmp_path / "a.jsonl", tmp_path / "state.json"
    log = AuditLog([FileSink(str(p))], chain_state_path=str(state))
    log.emit(full_event(0))
    old_state = state.read_text()
    log.emit(full_event(1))
    state.write_text(old_state)  # the state write of event 2 was lost
    log2 = AuditLog([FileSink(str(p))], chain_state_path=str(state))
    log2.emit(full_event(2))
    assert verify_file([str(p)]).ok


def test_torn_last_line_at_start(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    write_events(p, 3).close()
    ls = lines(p)
    p.write_text(ls[0] + ls[1] + ls[2][:40])  # crash mid-write
    log = AuditLog([FileSink(str(p))])
    log.emit(full_event(3))
    assert len(lines(p)) == 4 and json.loads(lines(p)[3])["prev"] == json.loads(ls[1])["hash"]
    res = verify_file([str(p)])
    assert res.first_broken == 3 and "JSON" in (res.reason or "")


# --------------------------------------------------------------------------- concurrency

def test_threads_keep_one_chain(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    log = AuditLog([FileSink(str(p), max_bytes=20000, backups=50)])

    def work(t: int) -> None:
        for i in range(40):
            log.emit(full_event(t * 100 + i))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sink = log.sinks[0]
    assert isinstance(sink, FileSink)
    assert verify_file(sink.files()).events == 160


async def test_tasks_keep_one_chain(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    log = AuditLog([FileSink(str(p))])

    async def one(i: int) -> None:
        await asyncio.sleep(0)
        log.emit(full_event(i))

    await asyncio.gather(*(one(i) for i in range(50)),
                         *(asyncio.to_thread(log.emit, full_event(100 + i)) for i in range(20)))
    assert verify_file([str(p)]).events == 70


# --------------------------------------------------------------------------- no raw text

BAD: list[dict[str, Any]] = [
    {"blocked_reason": f"user wrote {CANARY} and SSN 123-45-6789"},
    {"blocked_reason": f"entity:{CANARY_EMAIL}"},
    {"entities_in": {CANARY_EMAIL: 1}},
    {"entities_out": {f"US_SSN {CANARY}": 1}},
    {"actions": {CANARY: 1}},
    {"flags": [f"prompt said {CANARY}"]},
    {"request_id": f"{CANARY} {CANARY_EMAIL}"},
    {"route": CANARY_EMAIL},
    {"tenant": f"{CANARY} tenant"},
    {"error_code": f"upstream said {CANARY}"},
    {"toxicity": {"scorer": "detoxify", "max_scores": {CANARY_EMAIL: 0.5}}},
    {"toxicity": {"scorer": f"{CANARY} x", "max_scores": {}}},
    {"time": f"{CANARY}"},
    {CANARY_EMAIL: "x"},
    {"message": f"the prompt: {CANARY}"},
]


@pytest.mark.parametrize("bad", BAD, ids=[next(iter(b)) if next(iter(b)) != CANARY_EMAIL else "unknown_key" for b in BAD])
def test_free_text_is_rejected_and_never_echoed(tmp_path: Path, bad: dict[str, Any]) -> None:
    p = tmp_path / "a.jsonl"
    log = AuditLog([FileSink(str(p))])
    with pytest.raises(AuditEventInvalid) as ei:
        log.emit(full_event(**bad))
    for text in (str(ei.value), repr(ei.value)):
        assert CANARY not in text and "canary" not in text and "123-45" not in text
    assert ei.value.__cause__ is None and ei.value.__suppress_context__
    assert p.read_text() == ""
    with pytest.raises(ValidationError) as ve:
        AuditEvent(**full_event(**bad))
    assert CANARY not in str(ve.value) and "canary" not in str(ve.value)


def test_a_good_event_carries_only_types(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    AuditLog([FileSink(str(p))]).emit(full_event(entities_in={"CANARY_TYPE": 1}))
    # an entity type from the policy is fine; values never have a field to go into
    assert "CANARY_TYPE" in p.read_text()
    with pytest.raises(AuditEventInvalid):
        AuditLog([FileSink(str(p))]).emit(full_event(latency_ms={"total": float("inf")}))


# --------------------------------------------------------------------------- wiring helpers

def test_build_audit_log_from_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from types import SimpleNamespace

    p = tmp_path / "logs" / "audit.jsonl"
    log = build_audit_log(SimpleNamespace(path=str(p), stdout=None, max_bytes=1000, backups=40))
    assert [type(s) for s in log.sinks] == [FileSink] and log.chain_state_path == f"{p}.head"
    for i in range(25):
        log.emit(full_event(i))
    log.close()
    files = rotated_files(str(p))
    assert len(files) > 10 and files[0] == f"{p}.{len(files) - 1}"  # numeric, not lexicographic order
    assert verify([str(p)], rotated=True, state_path=f"{p}.head") == 0
    assert capsys.readouterr().out == "ok: 25 events\n"
    only_stdout = build_audit_log(SimpleNamespace(path=None, stdout=None, max_bytes=1, backups=0))
    assert [type(s) for s in only_stdout.sinks] == [StdoutSink] and only_stdout.chain_state_path is None


def test_backups_zero_never_rotates(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    write_events(p, 5, max_bytes=500, backups=0)
    assert rotated_files(str(p)) == [str(p)] and verify_file([str(p)]).events == 5


@pytest.mark.parametrize("reason", ["entity:US_SSN", "entity:US_SSN,EMAIL_ADDRESS", "toxicity",
                                    "toxicity:insult", "prompt", "prompt:threat", "zero_data_retention"])
def test_blocked_reason_forms(reason: str) -> None:
    AuditEvent(**full_event(blocked_reason=reason))


@pytest.mark.parametrize("reason", ["prompt_toxicity", "policy_blocked", "entity:", "entity:US SSN", "entity:a@b"])
def test_blocked_reason_other_forms_rejected(reason: str) -> None:
    with pytest.raises(ValidationError):
        AuditEvent(**full_event(blocked_reason=reason))


def test_unreadable_chain_state_refuses_to_start(tmp_path: Path) -> None:
    state = tmp_path / "s.json"
    state.write_text("garbage")
    with pytest.raises(RuntimeError):
        AuditLog([StdoutSink(io.StringIO())], chain_state_path=str(state))
