"""Audit trail: one typed event per request, hash-chained, written to sinks as JSON lines.

An event holds ids, types, counts, scores and timings only: every string field is bounded and
pattern-checked, so free text (a prompt, a value, a key) cannot be stored by mistake.

Tamper evidence: ``event.prev`` is the ``hash`` of the event before it ("0" * 64 for the first)
and ``hash = sha256(canonical JSON of the event without "hash")``; canonical JSON has sorted keys,
no spaces and ASCII only. Each line written is itself canonical JSON. ``verify_file`` walks the
chain over one or more files (oldest first) and names the first broken ``FILE:LINE``.

``AuditLog.emit`` is synchronous: it hashes and appends one short line (~500 bytes, no fsync)
under a ``threading.Lock``. The server never calls it on the event loop: :class:`AuditWriter`
validates the event on the loop, queues it (bounded) and a writer thread chains and writes it.

Several writers (``trustproxy serve --workers N``): one chain per worker. Worker ``i`` writes
its own files ``<path>.w<i>`` (rotated ``<path>.w<i>.1`` ...; state ``<path>.w<i>.head``) and
every event carries ``chain: "w<i>"``. ``verify_file`` follows each chain id separately (so
interleaved stdout streams verify too) and ``trustproxy audit verify <path>`` checks every
worker's chain found next to ``path``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any, Literal, Protocol

from pydantic import (BaseModel, ConfigDict, Field, StringConstraints, ValidationError,
                      field_validator, model_validator)

log = logging.getLogger(__name__)

GENESIS = "0" * 64

ENTITY_TYPE_RE = re.compile(r"^[A-Z0-9_]{1,64}$")
CATEGORY_RE = re.compile(r"^[a-z0-9_]{1,64}$")
_HEX64 = r"^[0-9a-f]{64}$"
_ID = r"^[A-Za-z0-9_.:-]{1,128}$"
_NAME = r"^[A-Za-z0-9_.:/-]{1,64}$"  # "/" for route names like openai/gpt-4o
_CODE = r"^[a-z0-9_]{1,64}$"
_FLAG = r"^[a-z0-9_.:-]{1,64}$"
_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"
#: <kind>[:<type or category>[,...]] with kind entity | toxicity | prompt; or zero_data_retention
_BLOCKED = r"^(zero_data_retention|(entity|toxicity|prompt)(:[A-Za-z0-9_]{1,64}(,[A-Za-z0-9_]{1,64}){0,15})?)$"

Id = Annotated[str, StringConstraints(pattern=_ID)]
Name = Annotated[str, StringConstraints(pattern=_NAME)]
Hex64 = Annotated[str, StringConstraints(pattern=_HEX64)]
ActionName = Literal["mask", "redact", "hash", "synthetic", "block", "allow", "flag"]
Outcome = Literal["ok", "blocked", "error", "client_disconnected"]


class AuditEventInvalid(ValueError):
    """An event failed validation. Names the fields only, never the values."""

    def __init__(self, fields: list[str]) -> None:
        super().__init__("invalid audit event field(s): " + ", ".join(fields))
        self.fields = fields


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_keys(cls, data: Any) -> Any:
        # reject unknown keys here so the error does not echo the key (which could be text)
        if isinstance(data, Mapping):
            unknown = [k for k in data if k not in cls.model_fields]
            if unknown:
                raise ValueError(f"{len(unknown)} unknown field(s)")
        return data


def _check_counts(value: dict[str, int], key_re: re.Pattern[str], what: str) -> dict[str, int]:
    # one message for the whole dict: a loc holding the bad key would echo it
    if len(value) > 256:
        raise ValueError(f"too many {what} keys")
    for k, n in value.items():
        if not isinstance(k, str) or not key_re.fullmatch(k):
            raise ValueError(f"{what} keys must match {key_re.pattern}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"{what} counts must be non-negative integers")
    return value


class ToxicityInfo(_Strict):
    scorer: Name = Field(description="Scorer that ran, e.g. profanity_check or detoxify.")
    max_scores: dict[str, float] = Field(default_factory=dict, description="Per category, the highest score seen (0-1).")
    decision: Literal["pass", "flag", "redact", "block"] = Field("pass", description="The strongest action taken.")

    @field_validator("max_scores", mode="before")
    @classmethod
    def _scores(cls, v: Any) -> Any:
        if not isinstance(v, Mapping) or len(v) > 64:
            raise ValueError("max_scores must be a small mapping")
        out: dict[str, float] = {}
        for k, s in v.items():
            if not isinstance(k, str) or not CATEGORY_RE.fullmatch(k):
                raise ValueError(f"categories must match {CATEGORY_RE.pattern}")
            if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 <= s <= 1:
                raise ValueError("scores must be numbers in [0, 1]")
            out[k] = round(float(s), 4)
        return out


class LatencyMs(_Strict):
    detection: float = Field(0.0, ge=0, description="Request PII detection and masking.")
    provider: float = Field(0.0, ge=0, description="Upstream call, to the last byte.")
    screening: float = Field(0.0, ge=0, description="Output screening (toxicity, output PII, restore).")
    total: float = Field(0.0, ge=0, description="Whole request as seen by the proxy.")

    @field_validator("*", mode="after")
    @classmethod
    def _round(cls, v: float) -> float:
        return round(v, 3)


def now_rfc3339() -> str:
    """Current UTC time as RFC 3339 with milliseconds, e.g. 2025-01-02T03:04:05.678Z."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class AuditEvent(_Strict):
    """One request's audit record. No raw text, values or keys: ids, types, counts, scores."""

    time: str = Field(default_factory=now_rfc3339, pattern=_TIME, description="RFC 3339 UTC, e.g. 2025-01-02T03:04:05.678Z.")
    request_id: Id = Field(description="The proxy's request id (also sent as X-Request-Id).")
    tenant: Name | None = Field(None, description="Tenant id from configuration.")
    route: Name = Field(description="Configured route (client-facing model name) or 'unknown'.")
    provider: Name | None = Field(None, description="litellm provider name, e.g. openai, anthropic, echo.")
    policy: Name = Field(description="Policy name.")
    policy_version: Name | None = Field(None, description="Policy content hash or version.")
    stream: bool = Field(False, description="Whether the reply was streamed.")
    status: int = Field(ge=100, le=599, description="HTTP status returned to the client.")
    outcome: Outcome = Field(description="ok | blocked | error | client_disconnected.")
    blocked_reason: str | None = Field(None, pattern=_BLOCKED, description="entity:<TYPE>[,<TYPE>...], toxicity[:<category>], prompt[:<category>] or zero_data_retention.")
    entities_in: dict[str, int] = Field(default_factory=dict, description="Entity type -> count detected in the request.")
    entities_out: dict[str, int] = Field(default_factory=dict, description="Entity type -> count detected in the reply.")
    actions: dict[str, int] = Field(default_factory=dict, description="Action (mask, redact, hash, synthetic, block, allow, flag) -> count.")
    toxicity: ToxicityInfo | None = Field(None, description="Output screening summary; null if screening was off.")
    flags: list[Annotated[str, StringConstraints(pattern=_FLAG)]] = Field(default_factory=list, max_length=32, description="Short lowercase markers, e.g. output_pii_redacted.")
    latency_ms: LatencyMs = Field(default_factory=LatencyMs)
    error_code: str | None = Field(None, pattern=_CODE, description="Our error code, e.g. upstream_timeout, guard_failed.")
    chain: Name | None = Field(None, description="Chain id (w<N>: the worker that wrote it) when several workers write; absent with one.")
    prev: Hex64 | None = Field(None, description="Hash of the previous event; set by AuditLog.")
    hash: Hex64 | None = Field(None, description="sha256 of this event's canonical JSON without `hash`; set by AuditLog.")

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, v: Any) -> Any:
        if isinstance(v, datetime):
            if v.tzinfo is None:
                raise ValueError("time must be timezone-aware")
            return v.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        return v

    @field_validator("entities_in", "entities_out")
    @classmethod
    def _entities(cls, v: dict[str, int]) -> dict[str, int]:
        return _check_counts(v, ENTITY_TYPE_RE, "entity type")

    @field_validator("actions")
    @classmethod
    def _actions(cls, v: dict[str, int]) -> dict[str, int]:
        _check_counts(v, re.compile(r"^(mask|redact|hash|synthetic|block|allow|flag)$"), "action")
        return v


def blocked_kind(reason: str | None) -> str | None:
    """The kind part of a ``blocked_reason`` (entity, toxicity, prompt, zero_data_retention)."""
    return None if reason is None else reason.split(":", 1)[0]


def canonical_json(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def event_hash(data: Mapping[str, Any]) -> str:
    """sha256 hex over the canonical JSON of ``data`` without its ``hash`` key."""
    body = {k: v for k, v in data.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body).encode("ascii")).hexdigest()


def _validate(event: AuditEvent | Mapping[str, Any]) -> AuditEvent:
    if isinstance(event, AuditEvent):
        return event
    try:
        return AuditEvent.model_validate(event)
    except ValidationError as e:
        fields = sorted({str(err["loc"][0]) if err["loc"] and str(err["loc"][0]) in AuditEvent.model_fields
                         else "event" for err in e.errors(include_input=False, include_url=False)})
        raise AuditEventInvalid(fields) from None


# --------------------------------------------------------------------------- sinks

class Sink(Protocol):
    def write(self, line: str) -> None:
        """Write one JSON line (ends with a newline)."""

    def close(self) -> None: ...


class StdoutSink:
    """JSON lines on stdout: the container default (the log collector ships them)."""

    def __init__(self, stream: Any = None) -> None:
        self._stream = stream

    def write(self, line: str) -> None:
        s = self._stream or sys.stdout
        s.write(line)
        s.flush()

    def close(self) -> None:
        pass


class FileSink:
    """Append-only JSON lines file with size-based rotation.

    Before a line would push ``path`` past ``max_bytes``, files shift ``path.(n-1) -> path.n``
    ... ``path -> path.1`` and the oldest beyond ``backups`` is deleted. The chain runs on across
    files: verify ``path.N ... path.1 path`` in that order (``rotated_files(path)``).
    ``max_bytes=0`` or ``backups=0`` never rotates (as ``logging.handlers.RotatingFileHandler``).
    """

    def __init__(self, path: str, max_bytes: int = 0, backups: int = 5) -> None:
        if max_bytes < 0 or backups < 0:
            raise ValueError("max_bytes and backups must be >= 0")
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size
        if self._size and not _ends_with_newline(path):
            os.write(self._fd, b"\n")  # a torn last line stays torn; the next event starts clean
            self._size += 1

    def _open(self) -> int:
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    def files(self) -> list[str]:
        """Existing files of this sink, oldest first (the order ``verify_file`` expects)."""
        rotated = [f"{self.path}.{i}" for i in range(self.backups, 0, -1)]
        return [p for p in [*rotated, self.path] if os.path.exists(p)]

    def last_hash(self) -> str | None:
        """``hash`` of the newest complete event in the current file or, if empty, ``path.1``."""
        for p in (self.path, f"{self.path}.1"):
            h = _last_hash_in(p)
            if h is not None:
                return h
        return None

    def _rotate(self) -> None:
        os.close(self._fd)
        oldest = f"{self.path}.{self.backups}"
        if os.path.exists(oldest):
            os.remove(oldest)
        for i in range(self.backups - 1, 0, -1):
            if os.path.exists(f"{self.path}.{i}"):
                os.replace(f"{self.path}.{i}", f"{self.path}.{i + 1}")
        os.replace(self.path, f"{self.path}.1")
        self._fd = self._open()
        self._size = 0

    def write(self, line: str) -> None:
        data = line.encode("ascii")
        if self.max_bytes and self.backups and self._size and self._size + len(data) > self.max_bytes:
            self._rotate()
        os.write(self._fd, data)  # one O_APPEND write per line
        self._size += len(data)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class OTelSink:
    """Sends each event as an OpenTelemetry log record (body = the JSON line).

    Optional: needs ``opentelemetry-api``/``-sdk`` (not a dependency). ``OTelSink.available()``
    tells whether it can be used; constructing it without them raises ``RuntimeError``.
    """

    def __init__(self, logger_name: str = "trustproxy.audit") -> None:
        try:
            from opentelemetry._logs import get_logger  # type: ignore[import-not-found]
        except ImportError as e:
            raise RuntimeError("OTelSink needs the opentelemetry packages, which are not installed") from e
        self._logger = get_logger(logger_name)

    @staticmethod
    def available() -> bool:
        try:
            import opentelemetry._logs  # type: ignore[import-not-found]  # noqa: F401
        except ImportError:
            return False
        return True

    def write(self, line: str) -> None:
        from opentelemetry._logs import LogRecord  # type: ignore[import-not-found,unused-ignore]
        self._logger.emit(LogRecord(body=line.rstrip("\n")))

    def close(self) -> None:
        pass


def _ends_with_newline(path: str) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _last_hash_in(path: str, tail: int = 65536) -> str | None:
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - tail))
            chunk = f.read()
    except FileNotFoundError:
        return None
    for raw in reversed(chunk.split(b"\n")):
        try:
            h = json.loads(raw).get("hash")
        except (ValueError, AttributeError):
            continue
        if isinstance(h, str) and re.fullmatch(_HEX64, h):
            return h
    return None


# --------------------------------------------------------------------------- the log

class AuditLog:
    """Chains events and writes each as one line to every sink.

    The chain head at start: from ``chain_state_path`` (``{"head": "<hash>"}``, overwritten in
    place after each event) if present, else from the last line of the first ``FileSink``, else ``GENESIS``. If
    the file is exactly one event ahead of the state (a crash between the two writes), the
    file wins. Otherwise a gap (say the file was truncated) shows as a break at the next event.
    """

    def __init__(self, sinks: Iterable[Sink], chain_state_path: str | None = None, chain_id: str | None = None) -> None:
        self.sinks = list(sinks)
        self.chain_state_path = chain_state_path
        self.chain_id = chain_id
        self._lock = threading.Lock()
        self._state_fd = -1
        self.head = self._initial_head()

    def _initial_head(self) -> str:
        state = self._read_state()
        file_sink = next((s for s in self.sinks if isinstance(s, FileSink)), None)
        file_head = file_sink.last_hash() if file_sink else None
        if state is None:
            return file_head or GENESIS
        if file_head and file_head != state and file_sink and _prev_of_last(file_sink) == state:
            return file_head
        if file_head and file_head != state:
            log.warning("audit chain state and file disagree; the gap will show in verify")
        return state

    def _read_state(self) -> str | None:
        if not self.chain_state_path:
            return None
        try:
            with open(self.chain_state_path, encoding="ascii") as f:
                head = json.load(f).get("head")
        except FileNotFoundError:
            return None
        except (ValueError, AttributeError, UnicodeDecodeError) as e:
            raise RuntimeError("audit chain state file is unreadable") from e
        if not isinstance(head, str) or not re.fullmatch(_HEX64, head):
            raise RuntimeError("audit chain state file holds no valid head")
        return head

    def _write_state(self, head: str) -> None:
        # fixed-length record overwritten in place: one pwrite, no create/rename per event
        if self._state_fd < 0:
            assert self.chain_state_path
            self._state_fd = os.open(self.chain_state_path, os.O_WRONLY | os.O_CREAT, 0o640)
        os.pwrite(self._state_fd, canonical_json({"head": head}).encode("ascii"), 0)

    def emit(self, event: AuditEvent | Mapping[str, Any]) -> AuditEvent:
        """Validate, chain and write one event; returns it with ``prev`` and ``hash`` set.

        Raises ``AuditEventInvalid`` (field names only) for a bad event, or the first sink's
        ``OSError`` after trying every sink (the chain advances if any sink took the line).
        """
        ev = _validate(event)
        with self._lock:
            data = ev.model_dump(mode="json", exclude={"hash"})
            if self.chain_id is not None:
                data["chain"] = self.chain_id  # null with one writer
            data["prev"] = self.head
            data["hash"] = event_hash(data)
            line = canonical_json(data) + "\n"
            errors: list[Exception] = []
            for sink in self.sinks:
                try:
                    sink.write(line)
                except Exception as e:  # noqa: BLE001 - try the others, then raise
                    errors.append(e)
            if len(errors) < len(self.sinks) or not self.sinks:
                self.head = data["hash"]
                if self.chain_state_path:
                    self._write_state(self.head)
        if errors:
            raise errors[0]
        return ev.model_copy(update={"prev": data["prev"], "hash": data["hash"], "chain": data.get("chain")})

    def close(self) -> None:
        with self._lock:
            for sink in self.sinks:
                sink.close()
            if self._state_fd >= 0:
                os.close(self._state_fd)
                self._state_fd = -1


class AuditWriter:
    """Audit events off the event loop: ``emit`` validates and queues (never blocks); one thread
    chains and writes them through an :class:`AuditLog`.

    The buffer is bounded (``capacity`` events). It **fails closed**: admission control refuses
    new requests (503) while ``backlog() + in-flight requests`` would not fit (see
    ``trustproxy.server.admission``), so every admitted request's event has room. Only an event
    with no admitted request behind it (an edge refusal while the writer is stuck) can find the
    buffer full: it is dropped, counted (``on_drop``, metric ``audit_dropped_total``) and logged by
    request id. Dropping is chosen there, not blocking, because blocking would stall the loop and
    so every request, which is the failure this writer exists to prevent.
    """

    def __init__(self, log_: AuditLog, capacity: int = 10_000, on_drop: Any = None) -> None:
        import queue

        self.log = log_
        self.capacity = capacity
        self._q: queue.Queue[AuditEvent | None] = queue.Queue(maxsize=capacity)
        self._on_drop = on_drop
        self.written = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="trustproxy-audit", daemon=True)
        self._thread.start()

    @property
    def sinks(self) -> list[Sink]:
        return self.log.sinks

    def backlog(self) -> int:
        return self._q.qsize()

    def emit(self, event: AuditEvent | Mapping[str, Any]) -> None:
        import queue

        ev = _validate(event)  # a bad event fails here, on the caller's side
        try:
            self._q.put_nowait(ev)
        except queue.Full:
            if self._on_drop is not None:
                self._on_drop()
            log.error("audit buffer full: event dropped request_id=%s", ev.request_id)

    def _run(self) -> None:
        while True:
            ev = self._q.get()
            if ev is None:
                self._q.task_done()
                return
            try:
                self.log.emit(ev)
                self.written += 1
            except Exception as exc:  # noqa: BLE001 - names the kind only
                self.failed += 1
                log.error("audit write failed request_id=%s kind=%s", ev.request_id, type(exc).__name__)
            finally:
                self._q.task_done()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event is written (tests, shutdown)."""
        import time as _time

        end = _time.monotonic() + timeout
        while self._q.unfinished_tasks:
            if _time.monotonic() > end:
                return False
            _time.sleep(0.002)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued (up to ``timeout`` s), stop the thread, close the sinks."""
        try:
            self._q.put(None, timeout=timeout)
        except Exception:  # noqa: BLE001 - queue stuck full: the thread is gone or wedged
            pass
        self._thread.join(timeout)
        self.log.close()


def rotated_files(path: str) -> list[str]:
    """``path`` and its existing rotated files ``path.N``, oldest first (the verify order)."""
    d, base = os.path.split(os.path.abspath(path))
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return []
    nums = []
    for name in names:
        suffix = name[len(base) + 1:] if name.startswith(base + ".") else ""
        if suffix.isdigit():
            nums.append(int(suffix))
    out = [f"{path}.{n}" for n in sorted(nums, reverse=True)]
    return out + [path] if os.path.exists(path) else out


def build_audit_log(cfg: Any, chain_id: str | None = None) -> AuditLog:
    """An ``AuditLog`` from ``settings.audit`` (attributes ``path``, ``stdout``, ``max_bytes``,
    ``backups``; optional ``chain_state_path``). With a path, the chain head is also kept in
    ``<path>.head`` unless ``chain_state_path`` says otherwise; stdout is used when ``stdout``
    is true, or when it is unset and there is no path. ``chain_id`` (one of several workers):
    the files are ``<path>.<chain_id>`` and every event names its chain."""
    sinks: list[Sink] = []
    path = getattr(cfg, "path", None)
    if path and chain_id:
        path = f"{path}.{chain_id}"
    if path:
        sinks.append(FileSink(path, max_bytes=cfg.max_bytes, backups=cfg.backups))
    stdout = getattr(cfg, "stdout", None)
    if stdout or (stdout is None and not path):
        sinks.append(StdoutSink())
    state = getattr(cfg, "chain_state_path", None)
    if state and chain_id:
        state = f"{state}.{chain_id}"
    state = state or (f"{path}.head" if path else None)
    return AuditLog(sinks, chain_state_path=state, chain_id=chain_id)


def _prev_of_last(sink: FileSink) -> str | None:
    for p in (sink.path, f"{sink.path}.1"):
        try:
            with open(p, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - 65536))
                lines = [ln for ln in f.read().split(b"\n") if ln.strip()]
        except FileNotFoundError:
            continue
        if lines:
            try:
                prev = json.loads(lines[-1]).get("prev")
            except (ValueError, AttributeError):
                return None
            return prev if isinstance(prev, str) else None
    return None


# --------------------------------------------------------------------------- verification

@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    events: int                     # events checked and found intact before the break
    first_broken: int | None = None  # 1-based line in ``file``
    reason: str | None = None
    file: str | None = None
    head: str | None = None         # hash of the last intact event


def verify_file(paths: str | list[str], *, start_prev: str | None = GENESIS,
                head: str | None = None) -> VerifyResult:
    """Check the chain across ``paths`` (oldest first).

    ``start_prev``: what the first event's ``prev`` must be; ``None`` accepts any (older files
    were rotated away). ``head``: the expected hash of the last event (from the chain state);
    if given, events missing from the end are caught too.
    """
    if isinstance(paths, str):
        paths = [paths]
    heads: dict[str | None, str | None] = {}  # chain id -> hash of its last event (None: one writer)
    expected = start_prev
    count = 0
    last_path, last_line = None, 0
    for path in paths:
        try:
            with open(path, "rb") as f:
                content = f.read()
        except OSError as e:
            return VerifyResult(False, count, None, f"cannot read file ({type(e).__name__})", path, expected)
        lines = content.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        last_path, last_line = path, len(lines)
        for no, raw in enumerate(lines, 1):
            chain = _chain_of(raw)
            expected = heads.get(chain, start_prev)
            h, why = _check_line(raw, expected)
            if h is None:
                return VerifyResult(False, count, no, why, path, expected)
            heads[chain] = expected = h
            count += 1
    if len(heads) > 1:
        expected = None  # several chains: a single expected head does not apply
    if head is not None and expected != head:
        return VerifyResult(False, count, last_line + 1, "events missing at the end (chain head does not match)",
                            last_path, expected)
    return VerifyResult(True, count, None, None, None, expected)


def _chain_of(raw: bytes) -> str | None:
    try:
        c = json.loads(raw).get("chain")
    except (ValueError, AttributeError):
        return None
    return c if isinstance(c, str) else None


def chain_files(path: str) -> list[str]:
    """The per-worker chain files next to ``path`` (``<path>.w<N>``), by worker number."""
    d, base = os.path.split(os.path.abspath(path))
    try:
        names = os.listdir(d or ".")
    except FileNotFoundError:
        return []
    found = [(int(n[len(base) + 2:]), n) for n in names
             if n.startswith(base + ".w") and n[len(base) + 2:].isdigit()]
    return [os.path.join(os.path.dirname(path), n) for _, n in sorted(found)]


def _check_line(raw: bytes, expected_prev: str | None) -> tuple[str | None, str | None]:
    """``(hash, None)`` if the line is an intact next event, else ``(None, reason)``."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None, "not valid JSON (line truncated or edited)"
    if not isinstance(data, dict) or not isinstance(data.get("hash"), str):
        return None, "not an audit event"
    if event_hash(data) != data["hash"]:
        return None, "hash mismatch (event edited)"
    if expected_prev is not None and data.get("prev") != expected_prev:
        return None, "prev does not match the previous event (event deleted, inserted or reordered)"
    try:
        AuditEvent.model_validate(data)
    except ValidationError as e:
        fields = sorted({str(err["loc"][0]) if err["loc"] and str(err["loc"][0]) in AuditEvent.model_fields
                         else "event" for err in e.errors(include_input=False, include_url=False)})
        return None, "invalid event field(s): " + ", ".join(fields)
    return data["hash"], None


def verify(paths: list[str], *, partial: bool = False, state_path: str | None = None,
           rotated: bool = False) -> int:
    """CLI body of ``trustproxy audit verify FILE...``: prints ``ok: N events`` (exit 0) or
    ``broken at FILE:LINE: reason`` (exit 1). ``partial``: the first file need not start the
    chain. ``state_path``: an AuditLog chain state file (``<path>.head``), to also catch events
    cut from the end. ``rotated``: each FILE stands for its rotated set (``rotated_files``)."""
    head = None
    if state_path:
        try:
            with open(state_path, encoding="ascii") as f:
                head = json.load(f).get("head")
        except (OSError, ValueError, AttributeError):
            print(f"broken at {state_path}: chain state file is unreadable")
            return 1
    chains = {p: chain_files(p) for p in paths}
    if not state_path and any(chains.values()):
        return _verify_chains(paths, chains, partial=partial, rotated=rotated)
    files = [f for p in paths for f in rotated_files(p)] if rotated else list(paths)
    if not files:
        print(f"broken at {paths[0] if paths else '-'}: no such file")
        return 1
    res = verify_file(files, start_prev=None if partial else GENESIS, head=head)
    if res.ok:
        print(f"ok: {res.events} events")
        return 0
    where = f"{res.file}:{res.first_broken}" if res.first_broken is not None else f"{res.file}"
    print(f"broken at {where}: {res.reason}")
    return 1


def _verify_chains(paths: list[str], chains: dict[str, list[str]], *, partial: bool, rotated: bool) -> int:
    """Each worker's chain on its own (its files, its ``.head`` state), then the plain file if any."""
    bad = 0
    total = 0
    for p in paths:
        sets = [[f for f in (rotated_files(c) if rotated else [c])] for c in chains[p]]
        if os.path.exists(p):
            sets.insert(0, rotated_files(p) if rotated else [p])
        for files in sets:
            head = None
            state = files[-1] + ".head"
            if os.path.exists(state):
                try:
                    with open(state, encoding="ascii") as f:
                        head = json.load(f).get("head")
                except (OSError, ValueError, AttributeError):
                    print(f"broken at {state}: chain state file is unreadable")
                    bad += 1
                    continue
            res = verify_file(files, start_prev=None if partial else GENESIS, head=head)
            if res.ok:
                print(f"ok: {files[-1]}: {res.events} events")
                total += res.events
            else:
                where = f"{res.file}:{res.first_broken}" if res.first_broken is not None else f"{res.file}"
                print(f"broken at {where}: {res.reason}")
                bad += 1
    if bad:
        return 1
    print(f"ok: {total} events in {sum(len(c) for c in chains.values())} worker chains")
    return 0
