"""Nothing raw leaves, nothing raw stays.

Canary values (PII, secrets, the client key, the provider key, a plain prompt sentence) go into
every request slot, and the fake providers answer with canaries of their own (values the
caller never sent, plus the caller's placeholders). A broad mix of requests then runs through
the real proxy: plain, streamed, tool calls, embeddings, blocked, upstream failures, broken
streams, malformed bodies, bad keys, client disconnects, the inspect endpoint, a client request id
made of personal data, and a policy reload that fails on a file full of canaries.

Every sink is captured (all log records at DEBUG with formatted tracebacks, stdout/stderr at
the file-descriptor level, the audit file, /metrics, /readyz (also while a failed reload is
reported), every error body and every response header) and searched for each canary. Afterwards: one audit event per admitted
request with the expected outcome, ``trustproxy audit verify`` ok, every Vault still alive is
empty, and the detector's caches (and spaCy's string store) hold no raw text.
"""

from __future__ import annotations

import asyncio
import gc
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.base import FakeProvider, Reply, ToolCall
from tests.fakes.providers import FakeAnthropic, FakeOllama, FakeOpenAI
from tests.proxy import ProxyServer
from trustproxy.settings import Client, Route, Settings, hash_key

ROOT = Path(__file__).resolve().parent.parent

# -- canaries -----------------------------------------------------------------------------------
NAME = "Quorvexa Zyndrith"
NAME2 = "Belvarine Oxtrude"
EMAIL = "quorvexa.zyndrith@example.com"
PHONE = "628-204-7731"
SSN = "529-47-6318"
CARD = "4539 1488 0343 6467"
OPENAI_KEY = "sk-proj-Qv7xZ2mN9pL4kR8tW1yB6cD3fH5jS0aE7gU2iO9nM4xC1vT6"
AWS_KEY = "AKIAQZ7XC4NRY4Y2K9PW"
GH_TOKEN = "ghp_Zq8Lm2Xv9Rt4Nw7Kp1Bc5Hd3Fj6Gs0Ay2Ue8"
CLIENT_KEY = "tp-canary-client-key-7f3e9a1c5b"
BLOCK_CLIENT_KEY = "tp-canary-blocked-client-2d8e4f"
BAD_KEY = "tp-canary-wrong-key-91ab7c3e"
PROVIDER_KEY = "sk-canary-provider-key-6c2d9e8f1a"
PROVIDER_ENV = "TP_ZR_PROVIDER_KEY"
SENTENCE = "The heliotrope walrus audits marmalade beneath the quiet viaduct"

# values only the fake providers ever say (never supplied by the caller)
REPLY_SENTENCE = "Cobaltine moths rehearse sonatas inside the granary"
REPLY_AWS = "AKIAREPLYC4NARY7Q2XZ"
REPLY_FAIL = "upstream echo of Vintrella Quosk and 536-22-9914"

CALLER_VALUES = [NAME, NAME2, EMAIL, PHONE, SSN, CARD, OPENAI_KEY, AWS_KEY, GH_TOKEN, SENTENCE]
SECRET_KEYS = [CLIENT_KEY, BLOCK_CLIENT_KEY, BAD_KEY, PROVIDER_KEY]
REPLY_ONLY = [REPLY_SENTENCE, REPLY_AWS, REPLY_FAIL]
ALL = CALLER_VALUES + SECRET_KEYS + REPLY_ONLY
#: pieces that must not survive anywhere either (a name split into tokens, digits of a number)
FRAGMENTS = ["Quorvexa", "Zyndrith", "Belvarine", "Oxtrude", "heliotrope walrus", "Cobaltine",
             "Vintrella", "6318", "6467", "Qv7xZ2mN9pL4", "Zq8Lm2Xv9Rt4"]

PROMPT = (f"My name is {NAME}, email {EMAIL}, phone {PHONE}, SSN {SSN}, card {CARD}. "
          f"Keys: {OPENAI_KEY} {AWS_KEY} {GH_TOKEN}. {SENTENCE}.")
PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*_\d+>")


def full_messages() -> list[dict[str, Any]]:
    """Canaries in every request slot."""
    return [
        {"role": "system", "content": f"You assist {NAME2}. {SENTENCE}."},
        {"role": "user", "name": "Quorvexa", "content": [
            {"type": "text", "text": f"My name is {NAME}, email {EMAIL}, "},
            {"type": "text", "text": f"phone {PHONE}, SSN {SSN}, card {CARD}."}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {
                "name": "lookup", "arguments": json.dumps({"who": NAME, "email": EMAIL, "key": AWS_KEY})}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": f"found {NAME}: token {GH_TOKEN}, key {OPENAI_KEY}"},
        {"role": "user", "content": f"Please reply to {NAME} at {EMAIL}. {SENTENCE}."},
    ]


TOOLS = [{"type": "function", "function": {
    "name": "lookup", "description": "Look a person up",
    "parameters": {"type": "object", "properties": {"who": {"type": "string"}, "email": {"type": "string"},
                                                    "key": {"type": "string"}}}}}]


def reply_script(body: Any) -> Reply:
    """The caller's own placeholders back, plus values the caller never sent."""
    seen = sorted(set(PLACEHOLDER.findall(json.dumps(body))))
    return Reply(text=f"Dear {' '.join(seen)}: {REPLY_SENTENCE}. Use key {REPLY_AWS}.")


def tool_script(body: Any) -> Reply:
    seen = sorted(set(PLACEHOLDER.findall(json.dumps(body))))
    args = json.dumps({"who": seen[0] if seen else "", "note": REPLY_SENTENCE, "key": REPLY_AWS})
    return Reply(tool_calls=[ToolCall(name="lookup", arguments=args)])


# -- capture ------------------------------------------------------------------------------------
class Capture(logging.Handler):
    """Every record, message and traceback formatted, with any extra attributes."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = f"{record.name} {record.levelname} {record.getMessage()}"
        except Exception:  # noqa: BLE001 - a bad format string: keep the raw parts
            text = f"{record.name} {record.msg!r} {record.args!r}"
        if record.exc_info and record.exc_info[1] is not None:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info))
        if record.stack_info:
            text += "\n" + record.stack_info
        extra = {k: v for k, v in record.__dict__.items() if k not in _STD_ATTRS}
        if extra:
            text += " " + repr(extra)
        self.lines.append(text)


_STD_ATTRS = set(logging.LogRecord("x", 0, "x", 0, "x", None, None).__dict__) | {"message", "asctime"}


@dataclass
class Sent:
    label: str
    status: int
    headers: dict[str, str]
    body: str
    rid: str | None = None
    outcome: str | None = None  # expected audit outcome; None: no audit event expected


@dataclass
class Run:
    sent: list[Sent] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    metrics: str = ""
    readyz: str = ""
    readyz_degraded: str = ""
    audit_path: Path | None = None
    audit: list[dict[str, Any]] = field(default_factory=list)
    provider_saw: str = ""
    provider_headers: str = ""
    live_vaults: int = 0
    nonempty_vaults: int = 0
    retained: list[tuple[str, str]] = field(default_factory=list)
    scanned: int = 0


class FdCapture:
    """stdout/stderr at the fd level and at the sys level (the proxy runs in another thread)."""

    def __enter__(self) -> "FdCapture":
        sys.stdout.flush()
        sys.stderr.flush()
        self._files = [tempfile.TemporaryFile(mode="w+b") for _ in range(2)]
        self._saved = [os.dup(1), os.dup(2)]
        os.dup2(self._files[0].fileno(), 1)
        os.dup2(self._files[1].fileno(), 2)
        self._sys = (sys.stdout, sys.stderr)
        self.out_io, self.err_io = io.StringIO(), io.StringIO()
        sys.stdout, sys.stderr = self.out_io, self.err_io
        return self

    def __exit__(self, *exc: Any) -> None:
        sys.stdout, sys.stderr = self._sys
        os.dup2(self._saved[0], 1)
        os.dup2(self._saved[1], 2)
        for fd in self._saved:
            os.close(fd)
        out = []
        for f in self._files:
            f.seek(0)
            out.append(f.read().decode("utf-8", "replace"))
            f.close()
        self.stdout = out[0] + self.out_io.getvalue()
        self.stderr = out[1] + self.err_io.getvalue()


# -- the run ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, Any]]:
    with FakeOpenAI(model="gpt-zr") as o, FakeAnthropic() as a, FakeOllama() as l:
        yield {"gpt": o, "claude": a, "llama": l}


def _policy_dir(tmp: Path) -> Path:
    d = tmp / "policies"
    d.mkdir()
    for p in (ROOT / "policies").glob("*.yaml"):
        shutil.copy(p, d / p.name)
    (d / "blocked.yaml").write_text(
        "name: blocked\nextends: default\ndescription: Social security numbers stop the request.\n"
        "entities:\n  - {type: US_SSN, action: block}\n", encoding="utf-8")
    return d


def _reset(fakes: dict[str, Any]) -> None:
    for f in fakes.values():
        f.script = reply_script
        f.reply_text = None
        f.chunk_size = 3
        f.chunk_delay = 0.0
        f.fail_status = None
        f.fail_message = REPLY_FAIL
        f.hang_seconds = 0.0
        f.break_stream_after = None
        f.malformed_json = False


@pytest.fixture(scope="module")
def run(fakes: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("zr")
    routes = {}
    for name, fake in fakes.items():
        p = fake.litellm_params()
        routes[name] = Route(model=p["model"], api_base=p["api_base"], api_key_env=PROVIDER_ENV,
                             timeout=5, max_retries=0)
    routes["gpt-slow"] = routes["gpt"].model_copy(update={"timeout": 0.5})
    (tmp / "audit").mkdir()
    audit = tmp / "audit" / "audit.jsonl"
    settings = Settings(routes=routes, policy_dir=str(_policy_dir(tmp)),
                        clients=[Client(name="app", key_sha256=hash_key(CLIENT_KEY), tenant="acme"),
                                 Client(name="strict", key_sha256=hash_key(BLOCK_CLIENT_KEY), tenant="acme",
                                        policy="blocked")],
                        max_body_bytes=256 * 1024, audit={"path": str(audit), "stdout": True},
                        log_level="DEBUG")
    old_env = os.environ.get(PROVIDER_ENV)
    os.environ[PROVIDER_ENV] = PROVIDER_KEY
    result = Run(audit_path=audit)
    cap = Capture()
    root = logging.getLogger()
    saved_levels: dict[str, int] = {}
    hooked: list[logging.Logger] = []
    old_root = root.level
    try:
        with FdCapture() as fds:
            with ProxyServer(settings) as proxy:
                # after start-up, so loggers the proxy quiets (propagate=False) are hooked too
                root.addHandler(cap)
                root.setLevel(logging.DEBUG)
                for name, lg in list(logging.Logger.manager.loggerDict.items()):
                    if isinstance(lg, logging.Logger):
                        saved_levels[name] = lg.level
                        if lg.level == logging.NOTSET or name.startswith("trustproxy"):
                            lg.setLevel(logging.DEBUG)
                        if not lg.propagate:
                            lg.addHandler(cap)
                            hooked.append(lg)
                _scenarios(proxy, fakes, result)
                gc.collect()
                from trustproxy.pii.vault import Vault
                vaults = [o for o in gc.get_objects() if type(o) is Vault]
                result.live_vaults = len(vaults)
                result.nonempty_vaults = sum(1 for v in vaults if _vault_holds(v))
                del vaults
                urllib.parse.clear_cache()  # the test's own HTTP client parsed URLs in this process
                result.retained, result.scanned = _retained(_roots(proxy), RETAIN_CHECK)
                result.metrics = httpx.get(proxy.url + "/metrics").text
                result.readyz = httpx.get(proxy.url + "/readyz").text
        result.stdout, result.stderr = fds.stdout, fds.stderr
    finally:
        root.removeHandler(cap)
        root.setLevel(old_root)
        for lg in hooked:
            lg.removeHandler(cap)
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)
        if old_env is None:
            os.environ.pop(PROVIDER_ENV, None)
        else:
            os.environ[PROVIDER_ENV] = old_env
    result.logs = cap.lines
    result.audit = [json.loads(x) for x in audit.read_text(encoding="utf-8").splitlines() if x.strip()]
    result.provider_saw = json.dumps([r.json for f in fakes.values() for r in f.requests])
    result.provider_headers = json.dumps([r.headers for f in fakes.values() for r in f.requests])
    yield result


RETAIN_CHECK = CALLER_VALUES + [CLIENT_KEY, BLOCK_CLIENT_KEY, BAD_KEY] + REPLY_ONLY + ["Quorvexa", "Zyndrith"]


def _roots(proxy: ProxyServer) -> list[Any]:
    """What a running proxy keeps: the app (runtime, provider, policies, metrics, audit), its event
    loop and tasks, every trustproxy module, the detector registry, and litellm's module state."""
    mods = [m for name, m in list(sys.modules.items())
            if m is not None and name.split(".")[0] in ("trustproxy", "litellm", "presidio_analyzer", "aiohttp")]
    return [proxy.app, proxy.loop, *mods]


def _retained(roots: list[Any], needles: list[str]) -> tuple[list[tuple[str, str]], int]:
    """Walk everything reachable from ``roots`` and report strings holding a needle, with the
    chain of holders (type names) from a root.

    Does not descend into other modules or into functions' globals (that would reach the test
    module's own canaries); frames contribute their locals."""
    import types

    root_ids = {id(r) for r in roots}
    parent: dict[int, Any] = {id(r): None for r in roots}
    keep: dict[int, Any] = {}
    stack = list(roots)
    seen: set[int] = set()
    hits: list[tuple[str, str]] = []

    def chain(o: Any) -> str:
        names = []
        cur = parent.get(id(o))
        while cur is not None and len(names) < 12:
            names.append(getattr(cur, "__name__", None) if isinstance(cur, types.ModuleType)
                         else type(cur).__qualname__)
            cur = parent.get(id(cur))
        return " <- ".join(str(n) for n in names)

    def push(o: Any, children: Any) -> None:
        for c in children:
            if id(c) not in parent:
                parent[id(c)] = o
            stack.append(c)

    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        keep[id(o)] = o
        if isinstance(o, (str, bytes, bytearray)):
            text = o if isinstance(o, str) else bytes(o).decode("utf-8", "replace")
            hits.extend((n, f"{text[:80]!r} held by {chain(o)}") for n in needles if n in text)
            continue
        if isinstance(o, FakeProvider) or (isinstance(o, asyncio.AbstractEventLoop) and id(o) not in root_ids):
            continue  # test infrastructure: the fake providers and their loops record what they saw
        if isinstance(o, types.ModuleType):
            if id(o) in root_ids:
                push(o, vars(o).values())
            continue
        if isinstance(o, types.FunctionType):
            push(o, [*(o.__closure__ or ()), *(o.__defaults__ or ()), *(o.__kwdefaults__ or {}).values()])
            continue
        if isinstance(o, types.FrameType):
            push(o, o.f_locals.values())
            continue
        push(o, gc.get_referents(o))
    return hits, len(seen)


def _vault_holds(v: Any) -> bool:
    return bool(v._value_of_key or v._value_of_fake or v._placeholder_of or v._fake_of or v._originals
                or v._existing or v._seen)


def rid_of(n: int) -> str:
    """A request id in the safe form the proxy keeps as it is (a UUID)."""
    return f"00000000-0000-4000-8000-{n:012d}"


# a client request id made of personal data, and a policy file full of canaries
PERSONAL_REQUEST_ID = f"{NAME.replace(' ', '-')}-{SSN}"
BAD_POLICY = (f"name: default\nnlp_model: {NAME2.replace(' ', '_')}\nallow_list: [{EMAIL}, {SENTENCE}]\n"
              f"entities:\n  - {{type: {NAME.replace(' ', '_').upper()}}}\n  - {{type: PERSON, action: {SSN}}}\n"
              f"custom_recognizers:\n  - {{name: {NAME2}, type: SECRET_THING, regex: '{OPENAI_KEY}(', score: 0.9}}\n")


def _failed_reload(proxy: ProxyServer, out: Run) -> None:
    """Publish a broken default.yaml full of canaries, let the reload fail, read /readyz, then
    put the good file back."""
    d = Path(proxy.runtime.policies.directory)
    good = (d / "default.yaml").read_text(encoding="utf-8")
    (d / "default.yaml").write_text(BAD_POLICY, encoding="utf-8")
    proxy.call(proxy.runtime.policies.check_once(), timeout=120)
    out.readyz_degraded = httpx.get(proxy.url + "/readyz").text
    (d / "default.yaml").write_text(good, encoding="utf-8")
    proxy.call(proxy.runtime.policies.check_once(), timeout=120)


def _scenarios(proxy: ProxyServer, fakes: dict[str, Any], out: Run) -> None:
    http = httpx.Client(base_url=proxy.url, timeout=30)
    counter = iter(range(1, 1000))

    def call(label: str, path: str, body: Any = None, *, key: str | None = CLIENT_KEY, raw: bytes | None = None,
             outcome: str | None = None, admitted: bool = True, client_rid: str | None = None) -> Sent:
        rid = client_rid or rid_of(next(counter))
        headers = {"x-request-id": rid, "Content-Type": "application/json"}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        content = raw if raw is not None else json.dumps(body).encode()
        r = http.post(path, content=content, headers=headers)
        if client_rid is not None:  # an unsafe id: recorded (and returned) as a keyed hash only
            rid = r.headers["x-request-id"]
        # requests refused at the edge (bad JSON, auth, size) are audited too, as errors
        s = Sent(label, r.status_code, dict(r.headers), r.text, rid, outcome if admitted else "error")
        out.sent.append(s)
        _reset(fakes)
        return s

    chat = "/v1/chat/completions"
    _reset(fakes)
    for route in ("gpt", "claude", "llama"):
        for stream in (False, True):
            call(f"{route} all slots stream={stream}", chat,
                 {"model": route, "stream": stream, "messages": full_messages(), "tools": TOOLS}, outcome="ok")
    for route in ("gpt", "claude", "llama"):
        for stream in (False, True):
            fakes[route].script = tool_script
            call(f"{route} tool call stream={stream}", chat,
                 {"model": route, "stream": stream, "tools": TOOLS,
                  "messages": [{"role": "user", "content": PROMPT}]}, outcome="ok")
    call("embeddings", "/v1/embeddings", {"model": "gpt", "input": [PROMPT, f"{NAME} {SENTENCE}"]}, outcome="ok")
    call("embeddings str", "/v1/embeddings", {"model": "gpt", "input": PROMPT}, outcome="ok")
    # blocked by policy (the strict client's policy blocks US_SSN)
    for stream in (False, True):
        call(f"blocked stream={stream}", chat, {"model": "gpt", "stream": stream,
                                                 "messages": [{"role": "user", "content": PROMPT}]},
             key=BLOCK_CLIENT_KEY, outcome="blocked")
    # upstream failures (their bodies carry canaries the caller never sent)
    for route in ("gpt", "claude", "llama"):
        for status in (500, 429):
            fakes[route].fail_status = status
            call(f"{route} upstream {status}", chat, {"model": route, "messages": [{"role": "user", "content": PROMPT}]},
                 outcome="error")
        fakes[route].fail_status = 500
        call(f"{route} upstream 500 stream", chat,
             {"model": route, "stream": True, "messages": [{"role": "user", "content": PROMPT}]}, outcome="error")
        fakes[route].break_stream_after = 2
        call(f"{route} broken stream", chat,
             {"model": route, "stream": True, "messages": [{"role": "user", "content": PROMPT}]}, outcome="error")
    fakes["gpt"].hang_seconds = 3
    call("upstream timeout", chat, {"model": "gpt-slow", "messages": [{"role": "user", "content": PROMPT}]},
         outcome="error")
    fakes["gpt"].malformed_json = True
    call("upstream malformed", chat, {"model": "gpt", "messages": [{"role": "user", "content": PROMPT}]},
         outcome="error")
    # malformed client bodies and bad fields: refused before a request context exists
    call("invalid json", chat, raw=f'{{"model": "gpt", "messages": [{{"content": "{PROMPT}"'.encode(), admitted=False)
    call("content wrong type", chat, {"model": "gpt", "messages": [{"role": "user", "content": {"t": PROMPT}}]},
         admitted=False)
    call("bad role", chat, {"model": "gpt", "messages": [{"role": NAME, "content": PROMPT}]}, admitted=False)
    # an unknown key (here the caller's own text) is dropped, never forwarded nor echoed
    call("unknown key in message", chat, {"model": "gpt", "messages": [{"role": "user", "content": "x", SSN: PROMPT}]},
         outcome="ok")
    call("bad part type", chat, {"model": "gpt", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": f"http://x/{EMAIL}"}, "text": PROMPT}]}]}, admitted=False)
    call("steering field", chat, {"model": "gpt", "api_base": f"http://{EMAIL}/", "api_key": OPENAI_KEY,
                                  "messages": [{"role": "user", "content": PROMPT}]}, admitted=False)
    call("unknown model", chat, {"model": NAME, "messages": [{"role": "user", "content": PROMPT}]}, admitted=False)
    call("embeddings token arrays", "/v1/embeddings", {"model": "gpt", "input": [[1, 2], PROMPT]}, admitted=False)
    call("too large", chat, {"model": "gpt", "messages": [{"role": "user", "content": PROMPT * 2000}]},
         admitted=False)
    # authentication failures
    call("wrong key", chat, {"model": "gpt", "messages": [{"role": "user", "content": PROMPT}]}, key=BAD_KEY,
         admitted=False)
    call("provider key as client key", chat, {"model": "gpt", "messages": [{"role": "user", "content": PROMPT}]},
         key=PROVIDER_KEY, admitted=False)
    call("no key", chat, {"model": "gpt", "messages": [{"role": "user", "content": PROMPT}]}, key=None,
         admitted=False)
    r = http.post("/v1/chat/completions", headers={"Authorization": f"Basic {BAD_KEY}"}, json={})
    out.sent.append(Sent("basic auth", r.status_code, dict(r.headers), r.text))
    # a request id made of personal data: neither stored nor returned
    call("personal request id", chat, {"model": "gpt", "messages": [{"role": "user", "content": PROMPT}]},
         outcome="ok", client_rid=PERSONAL_REQUEST_ID)
    call("personal request id stream", chat, {"model": "gpt", "stream": True,
                                              "messages": [{"role": "user", "content": PROMPT}]},
         outcome="ok", client_rid=PERSONAL_REQUEST_ID + "-2")
    # a failed reload: /readyz and the log name file, line and field only
    _failed_reload(proxy, out)
    # the dry-run endpoint and other reads
    call("inspect", "/v1/trust/inspect", {"text": PROMPT}, outcome="ok")  # a dry run: audited, its body is the caller's own text
    call("inspect strict", "/v1/trust/inspect", {"text": PROMPT, "policy": "blocked"}, key=BLOCK_CLIENT_KEY,
         outcome="ok")  # its own policy: a client may dry-run only what it is entitled to
    call("inspect playground", "/v1/trust/playground", {"op": "run", "input": PROMPT, "reply": PROMPT,
                                                        "draft": "name: default\n"}, outcome="ok")
    call("inspect playground golden", "/v1/trust/playground", {"op": "test", "draft": (
        f"name: default\ntests:\n  - text: {json.dumps(PROMPT)}\n    expect: {{detected: []}}\n")}, outcome="ok")
    for path in ("/v1/models", "/healthz", f"/v1/{EMAIL}"):
        r = http.get(path, headers={"Authorization": f"Bearer {CLIENT_KEY}"})
        out.sent.append(Sent(f"GET {path}", r.status_code, dict(r.headers), r.text))
    # client goes away mid-stream
    for route in ("gpt", "claude", "llama"):
        fake = fakes[route]
        fake.chunk_size = 1
        fake.chunk_delay = 0.02
        rid = rid_of(next(counter))
        with http.stream("POST", chat, headers={"Authorization": f"Bearer {CLIENT_KEY}", "x-request-id": rid},
                         json={"model": route, "stream": True,
                               "messages": [{"role": "user", "content": PROMPT + " " + SENTENCE * 8}]}) as r:
            headers = dict(r.headers)
            next(r.iter_bytes())
        out.sent.append(Sent(f"{route} disconnect", r.status_code, headers, "", rid, "client_disconnected"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _audit_has(out.audit_path, rid):
            time.sleep(0.05)
        _reset(fakes)
    # every admitted request's event is written before we look
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(_audit_has(out.audit_path, s.rid) for s in out.sent if s.rid):
        time.sleep(0.05)
    http.close()


def _audit_has(path: Path | None, rid: str | None) -> bool:
    assert path is not None
    return path.exists() and f'"request_id":"{rid}"' in path.read_text(encoding="utf-8")


def _find(haystack: str, needles: list[str]) -> list[str]:
    """Needles found in ``haystack``. A digits-only fragment (the tail of an SSN or card) counts
    only standing alone: inside a hex digest, a hash chain link or a latency like 26.318 it is
    chance, not a leak."""
    low = haystack.casefold()
    found = []
    for n in needles:
        if n.isdigit():
            if re.search(rf"(?<![0-9a-f.]){n}(?![0-9a-f])", low):
                found.append(n)
        elif n.casefold() in low:
            found.append(n)
    return found


# -- the checks ---------------------------------------------------------------------------------
def test_the_mix_ran_as_expected(run: Run) -> None:
    by = {s.label: s for s in run.sent}
    assert by["gpt all slots stream=False"].status == 200
    for label, s in by.items():
        if s.outcome == "ok":
            assert s.status == 200, (label, s.status)
        if s.outcome == "blocked" and "stream" in label:
            assert s.status == 400, (label, s.status)
    assert by["upstream timeout"].status == 504
    assert by["gpt upstream 429"].status == 429
    assert by["wrong key"].status == 401 and by["provider key as client key"].status == 401
    assert by["invalid json"].status == 400 and by["too large"].status == 413
    assert by["unknown model"].status == 404
    assert by["inspect"].status == 200
    for route in ("gpt", "claude", "llama"):
        assert '"error"' in by[f"{route} broken stream"].body
    # the provider never saw a caller value; it saw the placeholders
    assert _find(run.provider_saw, [v for v in CALLER_VALUES if v != SENTENCE] + SECRET_KEYS) == []
    assert SENTENCE in run.provider_saw  # plain text passes unchanged
    assert "<PERSON_1>" in run.provider_saw and "<US_SSN_1>" in run.provider_saw
    assert PROVIDER_KEY in run.provider_headers  # the provider key went where it belongs


def reply_parts(s: Sent) -> tuple[str, str]:
    """(content, tool-call arguments) of a reply, streamed (SSE deltas joined) or not."""
    content, args = [], []
    docs = [json.loads(x[6:]) for x in s.body.splitlines() if x.startswith("data: {")] \
        if s.body.startswith("data:") else [json.loads(s.body)]
    for doc in docs:
        for ch in doc.get("choices") or []:
            msg = ch.get("delta") or ch.get("message") or {}
            content.append(msg.get("content") or "")
            for call in msg.get("tool_calls") or []:
                args.append((call.get("function") or {}).get("arguments") or "")
    return "".join(content), "".join(args)


def test_replies_restore_the_callers_values_and_screen_the_providers(run: Run) -> None:
    checked = 0
    for s in run.sent:
        if s.outcome != "ok" or "embeddings" in s.label or "inspect" in s.label:
            continue
        if s.label == "unknown key in message":  # only "x" was forwarded: the unknown key was dropped
            assert not _find(s.body, CALLER_VALUES)
            continue
        content, args = reply_parts(s)
        text = content + args
        assert _find(text, CALLER_VALUES), s.label  # placeholders came back as the caller's values
        assert not PLACEHOLDER.search(text), s.label
        assert REPLY_AWS not in content, s.label  # output PII screen: a key the caller never sent
        checked += 1
    assert checked == 14


def test_tool_call_arguments_are_screened_for_output_pii(run: Run) -> None:
    leaked = [s.label for s in run.sent if s.outcome == "ok" and REPLY_AWS in reply_parts(s)[1]]
    assert leaked == []


def test_no_canary_in_logs(run: Run) -> None:
    assert run.logs, "the capture handler saw nothing: is logging hooked?"
    leaks = [(line[:300], _find(line, ALL + FRAGMENTS)) for line in run.logs if _find(line, ALL + FRAGMENTS)]
    assert not leaks, "\n".join(map(str, leaks))


def test_no_canary_on_stdout_or_stderr(run: Run) -> None:
    assert f'"request_id":"{rid_of(1)}"' in run.stdout  # the audit stdout sink was captured
    assert _find(run.stdout, ALL + FRAGMENTS) == []
    assert _find(run.stderr, ALL + FRAGMENTS) == []


def test_no_canary_in_audit_metrics_readyz(run: Run) -> None:
    assert run.audit_path is not None
    for p in run.audit_path.parent.iterdir():
        assert _find(p.read_text(encoding="utf-8", errors="replace"), ALL + FRAGMENTS) == [], p.name
    assert "trustproxy" in run.metrics
    assert _find(run.metrics, ALL + FRAGMENTS) == []
    assert _find(run.readyz, ALL + FRAGMENTS) == []
    degraded = json.loads(run.readyz_degraded)
    assert degraded["status"] == "degraded" and len(degraded["policies"]["last_error"]) >= 4, run.readyz_degraded
    errors = degraded["policies"]["last_error"]
    assert all(re.match(r"[a-z]+\.yaml:\d+:\d+ [a-z_.\[\]0-9]+: ", e) for e in errors), errors  # file:line:col field
    assert sum(e.startswith("default.yaml:") for e in errors) == 3, errors
    assert _find(run.readyz_degraded, ALL + FRAGMENTS) == []


def test_personal_request_ids_become_keyed_hashes(run: Run) -> None:
    sent = [s for s in run.sent if s.label.startswith("personal request id")]
    assert len(sent) == 2 and all(s.status == 200 for s in sent)
    assert all(re.fullmatch(r"rid_[0-9a-f]{32}", s.rid or "") for s in sent)
    assert sent[0].rid != sent[1].rid
    assert sum(1 for e in run.audit if e["request_id"] in {s.rid for s in sent}) == 2


def test_no_canary_in_error_bodies_or_headers(run: Run) -> None:
    leaks = []
    for s in run.sent:
        head = json.dumps(s.headers)
        if _find(head, ALL + FRAGMENTS):
            leaks.append((s.label, "headers", _find(head, ALL + FRAGMENTS)))
        if s.status >= 400 or s.outcome in ("error", "blocked"):
            body = s.body
            if s.label.endswith("broken stream") or "stream=True" in s.label:
                body = "\n".join(x for x in s.body.splitlines() if '"error"' in x)
            if _find(body, ALL + FRAGMENTS):
                leaks.append((s.label, "body", _find(body, ALL + FRAGMENTS)))
        else:
            text = s.body + ("".join(reply_parts(s)) if s.body.startswith(("data:", "{")) else "")
            if _find(text, SECRET_KEYS + [REPLY_FAIL]):
                leaks.append((s.label, "body", _find(text, SECRET_KEYS + [REPLY_FAIL])))
    assert not leaks, "\n".join(map(str, leaks))


def test_one_audit_event_per_request(run: Run) -> None:
    events: dict[str, list[dict[str, Any]]] = {}
    for ev in run.audit:
        events.setdefault(ev["request_id"], []).append(ev)
    admitted = [s for s in run.sent if s.rid]
    problems = []
    extra = sorted({e["request_id"] for e in run.audit} - {s.rid for s in admitted})
    # the few probes sent without a request id (a 401 and a 404 at the edge) are audited too
    assert all(e["outcome"] == "error" for e in run.audit if e["request_id"] in extra)
    for s in admitted:
        got = events.get(s.rid or "", [])
        if len(got) != 1 or got[0]["outcome"] != s.outcome:
            problems.append((s.label, s.outcome, [e["outcome"] for e in got]))
    assert problems == []
    assert len(run.audit) == len(admitted) + len(extra)  # refused-at-the-edge requests leave one event too
    blocked = [e for e in run.audit if e["outcome"] == "blocked"]
    assert blocked and all(e["blocked_reason"] == "entity:US_SSN" for e in blocked)


def test_audit_verify_cli_ok(run: Run) -> None:
    assert run.audit_path is not None
    res = subprocess.run([str(Path(sys.executable).parent / "trustproxy"), "audit", "verify", str(run.audit_path),
                          "--state", f"{run.audit_path}.head"], capture_output=True, text=True, timeout=60,
                         cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith(f"ok: {len(run.audit)} events")


def test_vaults_are_empty_after_every_request(run: Run) -> None:
    assert run.nonempty_vaults == 0, f"{run.nonempty_vaults} of {run.live_vaults} live Vaults still hold values"


def test_nothing_reachable_from_the_proxy_holds_a_value(run: Run) -> None:
    """After the requests end, no object the proxy (or litellm, Presidio, aiohttp) keeps holds a
    caller value, a client key, or text of a provider reply."""
    assert run.scanned > 10_000
    assert not run.retained, "\n".join(map(str, sorted(set(run.retained))[:40]))


def test_detection_caches_hold_no_raw_text(run: Run) -> None:
    from trustproxy.pii import detector as det

    assert det._detectors, "the proxy built no detector?"
    for d in det._detectors.values():
        blob = repr(list(d._cache._d.items())) + repr(list(d._custom_cache.items()))
        # keys are keyed digests (random per process): a 4-digit fragment may occur in hex by chance
        blob = re.sub(r"[0-9a-f]{64}", "<digest>", blob)
        assert _find(blob, ALL + FRAGMENTS) == []
        for key, _spans in d._cache._d.items():
            assert all(re.fullmatch(r"[0-9a-f]{64}|[A-Za-z0-9_:.-]*", k) for k in key)


def test_spacy_keeps_no_strings_of_the_requests(run: Run) -> None:
    """spaCy interns every token it sees in a process-wide StringStore unless told otherwise."""
    from trustproxy.pii import detector as det

    kept = []
    for d in det._detectors.values():
        for nlp in d._engine.nlp.values():
            strings = nlp.vocab.strings
            for tok in ALL + FRAGMENTS + ["7731", "Quosk"]:
                if tok in strings or tok.lower() in strings:
                    kept.append(tok)
    assert sorted(set(kept)) == []
