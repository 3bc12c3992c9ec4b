"""The only module that talks to litellm.

Turns a screened, OpenAI-shaped request into a litellm call (retries and timeouts; the
Router for routes with fallbacks) and the answer back into plain OpenAI-shaped dicts, whatever the provider.
Upstream failures become ``UpstreamError`` with an honest status and a message we wrote
ourselves (upstream bodies may echo the prompt, so they are never copied).

The embedded demo route ``echo`` answers through litellm's own mock path, so it exercises the
same normalisation code with no key and no network: it echoes the last message as the provider
received it (that is, masked).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
from collections.abc import AsyncGenerator
from typing import Any

import trustproxy._offline  # noqa: F401  (env before litellm import)
from trustproxy.errors import UpstreamError
from trustproxy.settings import ECHO_MODEL, Route, Settings
from trustproxy.wire import CURRENT_WATCH, StreamWatch, WatchingTransport

log = logging.getLogger("trustproxy.providers")

# Fields we forward; everything else in a client body was refused or dropped at the edge.
_CHUNK_KEYS = ("id", "object", "created", "model", "system_fingerprint", "service_tier", "choices", "usage")
_MESSAGE_KEYS = ("role", "content", "tool_calls", "function_call", "refusal")
_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


def _quiet_litellm(litellm: Any) -> None:
    """litellm logs request bodies at DEBUG and phones home unless told not to."""
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    litellm.turn_off_message_logging = True
    litellm.drop_params = True
    litellm.set_verbose = False
    litellm.disable_hf_tokenizer_download = True  # token counting never fetches a tokenizer
    litellm.disable_end_user_cost_tracking = True
    litellm.disable_streaming_logging = True  # no per-chunk logging work: we have no callbacks
    _watch_openai_streams(litellm)
    _preload_lazy_imports()
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm", "httpx", "httpcore", "openai",
                 "anthropic"):
        logging.getLogger(name).setLevel(logging.ERROR)
        logging.getLogger(name).propagate = False


# Modules litellm imports inside ``completion`` the first time it runs: the proxy's pydantic
# types behind its file-id helpers take seconds to import, so a worker's first request (and the
# first after each restart) waited for them. Imported at start-up instead (~5 MB).
_LAZY_LITELLM_MODULES = ("litellm.proxy.openai_files_endpoints.common_utils",)


def _preload_lazy_imports() -> None:
    import importlib

    for name in _LAZY_LITELLM_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - another litellm layout: it imports what it needs itself
            log.debug("litellm module %s not preloaded", name)


def _watch_openai_streams(litellm: Any) -> None:
    """litellm's OpenAI(-compatible) clients use ``litellm.aclient_session``: give it the
    transport that sees ``[DONE]``, converts JSON answers to streams and bounds stream size
    (see ``wire.py``). Set once per process; the transport keeps one pool per event loop."""
    import httpx

    current = getattr(litellm, "aclient_session", None)
    if isinstance(getattr(current, "_transport", None), WatchingTransport):
        return
    litellm.aclient_session = httpx.AsyncClient(transport=WatchingTransport(), follow_redirects=False)


_EOF_WITHOUT_FINISH = "Stream ended before a finish_reason was received"


def _text_size(chunk: dict[str, Any]) -> int:
    n = 0
    for ch in chunk.get("choices") or []:
        d = ch.get("delta") or {}
        n += len(d.get("content") or "") + len(d.get("refusal") or "")
        for c in d.get("tool_calls") or []:
            fn = c.get("function") or {}
            n += len(fn.get("arguments") or "") + len(fn.get("name") or "")
    return n


def _clean_tool_calls(calls: Any) -> list[dict[str, Any]] | None:
    if not calls:
        return None
    out = []
    for i, c in enumerate(calls):
        fn = c.get("function") or {}
        item: dict[str, Any] = {"index": c.get("index", i)}
        if c.get("id"):
            item["id"] = c["id"]
        if c.get("type") or c.get("id"):
            item["type"] = c.get("type") or "function"
        f: dict[str, Any] = {}
        if fn.get("name") is not None:
            f["name"] = fn["name"]
        if fn.get("arguments") is not None:
            f["arguments"] = fn["arguments"]
        item["function"] = f
        out.append(item)
    return out


def _clean_usage(usage: Any) -> dict[str, Any] | None:
    if not isinstance(usage, dict):
        return None
    return {k: usage[k] for k in _USAGE_KEYS if usage.get(k) is not None}


def _clean_message(msg: dict[str, Any], *, in_stream: bool) -> dict[str, Any]:
    """An OpenAI message (or stream delta) with only the fields we forward."""
    m = {k: msg.get(k) for k in _MESSAGE_KEYS if msg.get(k) is not None}
    m.pop("tool_calls", None)
    tc = _clean_tool_calls(msg.get("tool_calls"))
    if tc:
        if not in_stream:  # `index` belongs to stream deltas only
            for c in tc:
                c.pop("index", None)
        m["tool_calls"] = tc
    return m


def _normalise(raw: dict[str, Any], *, in_stream: bool) -> dict[str, Any]:
    out = {k: raw[k] for k in _CHUNK_KEYS if raw.get(k) is not None and k != "choices"}
    out["object"] = "chat.completion.chunk" if in_stream else "chat.completion"
    choices = []
    for i, ch in enumerate(raw.get("choices") or []):
        # minimal OpenAI-compatible servers send no index (litellm passes it on as None)
        idx = ch.get("index") if isinstance(ch.get("index"), int) else i
        if in_stream:
            choices.append({"index": idx, "delta": _clean_message(ch.get("delta") or {}, in_stream=True),
                            "finish_reason": ch.get("finish_reason")})
        else:
            m = _clean_message(ch.get("message") or {}, in_stream=False)
            m.setdefault("role", "assistant")
            m.setdefault("content", None)
            choices.append({"index": idx, "message": m, "finish_reason": ch.get("finish_reason") or "stop",
                            "logprobs": ch.get("logprobs")})
    out["choices"] = choices
    if raw.get("usage") is not None:
        out["usage"] = _clean_usage(raw["usage"])
    return out


def normalise_response(raw: dict[str, Any]) -> dict[str, Any]:
    return _normalise(raw, in_stream=False)


def normalise_chunk(raw: dict[str, Any]) -> dict[str, Any]:
    return _normalise(raw, in_stream=True)


def _echo_text(body: dict[str, Any]) -> str:
    msgs = body.get("messages") or []
    if not msgs:
        return ""
    content = msgs[-1].get("content")
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


def _echo_embedding(text: str, dims: int = 16) -> list[float]:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    vec = [(b - 127.5) / 127.5 for b in digest[:dims]]
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


def _retry_after(exc: BaseException) -> str | None:
    for attr in ("litellm_response_headers", "headers"):
        h = getattr(exc, attr, None)
        if h is not None and hasattr(h, "get"):
            v = h.get("retry-after") or h.get("Retry-After")
            if v:
                return str(v)
    resp = getattr(exc, "response", None)
    h = getattr(resp, "headers", None)
    if h is not None:
        v = h.get("retry-after")
        if v:
            return str(v)
    return None


def map_upstream_error(exc: BaseException, route: str) -> UpstreamError:
    """Turn a litellm/httpx exception into an honest OpenAI-shaped error (no upstream text)."""
    import litellm

    name = type(exc).__name__
    status = getattr(exc, "status_code", None)
    if isinstance(exc, litellm.Timeout) or "Timeout" in name or isinstance(exc, TimeoutError):
        return UpstreamError(f"The provider for '{route}' did not answer in time.", status=504,
                             code="upstream_timeout")
    if isinstance(exc, litellm.RateLimitError) or status == 429:
        ra = _retry_after(exc)
        return UpstreamError(f"The provider for '{route}' is rate limiting requests; retry later.", status=429,
                             code="rate_limit_exceeded", headers={"Retry-After": ra} if ra else None)
    if isinstance(exc, litellm.ContextWindowExceededError):
        return UpstreamError("The request is too long for the model's context window.", status=400,
                             code="context_length_exceeded")
    if isinstance(exc, litellm.ContentPolicyViolationError):
        return UpstreamError("The provider refused the request under its content policy.", status=400,
                             code="content_policy_violation")
    if isinstance(exc, (litellm.AuthenticationError, litellm.PermissionDeniedError)) or status in (401, 403):
        return UpstreamError(f"The proxy could not authenticate to the provider for '{route}'.", status=502,
                             code="upstream_auth_failed")
    if isinstance(exc, litellm.NotFoundError) or status == 404:
        return UpstreamError(f"The provider does not know the model behind '{route}'.", status=502,
                             code="upstream_model_not_found")
    if isinstance(exc, litellm.BadRequestError) or status in (400, 422):
        return UpstreamError(f"The provider for '{route}' rejected the request as invalid.", status=400,
                             code="upstream_bad_request")
    if isinstance(exc, litellm.APIConnectionError) and status in (None, 500):
        return UpstreamError(f"The provider for '{route}' could not be reached or answered malformed data.",
                             status=502, code="upstream_unavailable")
    if status == 503 or isinstance(exc, litellm.ServiceUnavailableError):
        return UpstreamError(f"The provider for '{route}' is unavailable.", status=503, code="upstream_unavailable")
    return UpstreamError(f"The provider for '{route}' failed (upstream status {status or 'unknown'}).", status=502,
                         code="upstream_error")


def _register_unknown_model(litellm: Any, route: Route) -> None:
    """litellm looks up models missing from its bundled cost map over the network (for Ollama,
    a sync POST to localhost:11434 ignoring ``api_base``). Registering the route's model stops
    any such lookup: the only host contacted is the configured provider."""
    if route.model == ECHO_MODEL or route.model in litellm.model_cost:
        return
    provider = route.model.split("/", 1)[0] if "/" in route.model else "openai"
    litellm.model_cost[route.model] = {"litellm_provider": provider, "mode": "chat", "max_tokens": 8192,
                                       "max_input_tokens": 128000, "max_output_tokens": 8192,
                                       "input_cost_per_token": 0.0, "output_cost_per_token": 0.0,
                                       "supports_function_calling": True}


async def _close(stream: Any) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:  # noqa: BLE001 - closing a dead stream
            pass


class _ClosingStream:
    """The chunk iterator of one upstream stream. ``aclose`` closes the upstream call even when no
    chunk was ever read (an async generator that never started skips its ``finally``)."""

    def __init__(self, gen: AsyncGenerator[dict[str, Any], None], upstream: Any) -> None:
        self._gen = gen
        self._upstream = upstream
        self._started = False

    def __aiter__(self) -> "_ClosingStream":
        return self

    async def __anext__(self) -> dict[str, Any]:
        self._started = True
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        await self._gen.aclose()
        if not self._started:
            close = getattr(self._upstream, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception:  # noqa: BLE001 - closing a dead stream
                    pass


class Provider:
    """litellm for all configured routes: one Router (fallbacks), direct calls otherwise."""

    def __init__(self, settings: Settings) -> None:
        import litellm
        from litellm import Router

        _quiet_litellm(litellm)
        self.routes: dict[str, Route] = dict(settings.routes)
        model_list = []
        fallbacks = []
        for name, route in self.routes.items():
            _register_unknown_model(litellm, route)
            model_list.append({"model_name": name, "litellm_params": self._params(route)})
            if route.fallbacks:
                fallbacks.append({name: list(route.fallbacks)})
        self._direct = {name: self._params(route) for name, route in self.routes.items()}
        self.router = Router(model_list=model_list, fallbacks=fallbacks or None, num_retries=0,
                             retry_after=0, disable_cooldowns=True, set_verbose=False)

    @staticmethod
    def _params(route: Route) -> dict[str, Any]:
        if route.model == ECHO_MODEL:
            return {"model": "openai/echo", "api_key": "echo-needs-no-key", "api_base": "http://127.0.0.1:9/v1"}
        p: dict[str, Any] = {"model": route.model, "timeout": route.timeout, **route.params}
        if route.stream_timeout:
            p["stream_timeout"] = route.stream_timeout
        if route.api_base:
            p["api_base"] = route.api_base
        if route.api_version:
            p["api_version"] = route.api_version
        if route.api_key_env:
            key = os.environ.get(route.api_key_env)
            if not key:
                log.warning("route model=%s: environment variable %s is not set", route.model, route.api_key_env)
            p["api_key"] = key or ""
        elif route.api_base:
            # a local or self-hosted server that needs no key (vLLM, Ollama, llama.cpp ...)
            p["api_key"] = "no-key-configured"
        # litellm retries (num_retries per call); the provider SDK must not retry on its own
        p.setdefault("max_retries", 0)
        return p

    def provider_name(self, route: str) -> str:
        r = self.routes[route]
        if r.model == ECHO_MODEL:
            return "echo"
        return r.model.split("/", 1)[0] if "/" in r.model else "openai"

    def _call_kwargs(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.routes[route]
        kw = {k: v for k, v in body.items() if k not in ("model", "stream")}
        kw["num_retries"] = r.max_retries
        kw["no-log"] = True
        if r.zero_data_retention and self.provider_name(route) in ("openai", "azure"):
            kw["store"] = False  # provider-side storage of completions off for ZDR routes
        if r.model == ECHO_MODEL:
            kw["mock_response"] = _echo_text(body)
            kw.pop("tools", None)
            kw.pop("tool_choice", None)
            kw["n"] = 1
        return kw

    async def _acompletion(self, route: str, **kw: Any) -> Any:
        """Routes with fallbacks go through the Router; a route without any calls litellm
        directly with the same params and litellm's own retries (``num_retries``): the Router's
        deployment selection costs ~2.5 ms a call and does nothing for a single deployment."""
        if self.routes[route].fallbacks:
            return await self.router.acompletion(model=route, **kw)
        import litellm

        return await litellm.acompletion(**self._direct[route], **kw)

    async def chat(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            resp = await self._acompletion(route, stream=False, **self._call_kwargs(route, body))
        except Exception as exc:  # noqa: BLE001 - every upstream failure is mapped
            raise self._fail(exc, route) from None
        return normalise_response(resp.model_dump())

    async def chat_stream(self, route: str, body: dict[str, Any]) -> _ClosingStream:
        """Yield OpenAI-shaped chunks. Raises UpstreamError before or during the stream.

        Wire quirks are settled here (see ``wire.py``): a stream that ended with ``[DONE]`` is
        complete even without a ``finish_reason``; a JSON answer is converted to chunks; a
        non-stream answer (HTML, an error object) is an error before anything is sent; a stream
        longer than the route's ``max_stream_seconds`` or larger than ``max_stream_bytes`` is
        cut with an error."""
        r = self.routes[route]
        watch = StreamWatch(max_bytes=r.max_stream_bytes)
        token = CURRENT_WATCH.set(watch)
        try:
            stream = await self._acompletion(route, stream=True, **self._call_kwargs(route, body))
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc, route) from None
        finally:
            CURRENT_WATCH.reset(token)
        if watch.problem == "not_a_stream":
            await _close(stream)
            raise UpstreamError(f"The provider for '{route}' answered a streamed request with something that is "
                                "not a stream.", status=502, code="upstream_not_a_stream")
        return _ClosingStream(self._iterate(stream, route, watch), stream)

    async def _iterate(self, stream: Any, route: str, watch: StreamWatch) -> AsyncGenerator[dict[str, Any], None]:
        r = self.routes[route]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + r.max_stream_seconds
        size = 0
        seen: dict[int, bool] = {}  # choice index -> finished
        shell: dict[str, Any] = {}
        it = stream.__aiter__()
        try:
            while True:
                remaining = deadline - loop.time()
                try:
                    if remaining <= 0:
                        raise TimeoutError
                    async with asyncio.timeout(remaining):  # no yield inside: the scope is this await only
                        raw = await it.__anext__()
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise UpstreamError(f"The provider's stream for '{route}' passed the route's maximum duration "
                                        f"({r.max_stream_seconds:g} s) and was cut.", status=502,
                                        code="upstream_stream_too_long") from None
                chunk = normalise_chunk(raw.model_dump())
                size += _text_size(chunk)
                if size > r.max_stream_bytes:
                    watch.problem = "too_large"
                    raise UpstreamError("too large")
                shell = {k: chunk[k] for k in ("id", "created", "model") if k in chunk}
                for ch in chunk["choices"]:
                    seen[ch["index"]] = seen.get(ch["index"], False) or bool(ch.get("finish_reason"))
                yield chunk
        except Exception as exc:  # noqa: BLE001
            if watch.problem == "too_large":
                raise UpstreamError(f"The provider's stream for '{route}' passed the route's maximum size "
                                    f"({r.max_stream_bytes} bytes) and was cut.", status=502,
                                    code="upstream_stream_too_large") from None
            if isinstance(exc, UpstreamError):
                raise
            if watch.done and _EOF_WITHOUT_FINISH in str(exc):
                # a minimal server: [DONE] arrived, a finish_reason never did; the reply is complete
                for idx in [i for i, done in seen.items() if not done] or ([] if seen else [0]):
                    yield {**shell, "object": "chat.completion.chunk",
                           "choices": [{"index": idx, "delta": {}, "finish_reason": "stop"}]}
                return
            err = self._fail(exc, route)
            if err.code not in ("upstream_timeout", "rate_limit_exceeded"):
                # whatever litellm calls it (MidStreamFallbackError, APIConnectionError ...)
                err = UpstreamError(f"The provider's stream for '{route}' broke off before the reply was "
                                    "complete.", status=502, code="upstream_stream_broken")
            raise err from None
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception:  # noqa: BLE001 - closing a dead stream
                    pass

    async def embed(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.routes[route]
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        if r.model == ECHO_MODEL:
            return {"object": "list", "model": route,
                    "data": [{"object": "embedding", "index": i, "embedding": _echo_embedding(t)}
                             for i, t in enumerate(inputs)],
                    "usage": {"prompt_tokens": sum(len(t.split()) for t in inputs),
                              "total_tokens": sum(len(t.split()) for t in inputs)}}
        kw = {k: v for k, v in body.items() if k not in ("model",)}
        kw["num_retries"] = r.max_retries
        try:
            resp = await self.router.aembedding(model=route, **kw)
        except Exception as exc:  # noqa: BLE001
            raise self._fail(exc, route) from None
        raw = resp.model_dump()
        return {"object": "list", "model": raw.get("model") or route,
                "data": [{"object": "embedding", "index": d.get("index", i), "embedding": d.get("embedding")}
                         for i, d in enumerate(raw.get("data") or [])],
                "usage": _clean_usage(raw.get("usage")) or {}}

    def count_tokens(self, route: str, body: dict[str, Any]) -> int:
        """Tokens of a (masked) canonical request, counted locally by litellm's tokenizers:
        nothing is sent. CPU work: call it off the event loop."""
        import litellm

        model = self._direct[route]["model"]
        return int(litellm.token_counter(model=model, messages=body["messages"], tools=body.get("tools")))

    async def close(self) -> None:
        """Stop litellm's background logging worker on this loop (no pending-task warnings)."""
        try:
            from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER
        except ImportError:  # pragma: no cover - other litellm versions
            return
        try:
            await GLOBAL_LOGGING_WORKER.stop(discard_pending=True, timeout=1.0)
        except Exception:  # noqa: BLE001 - best effort at shutdown
            pass

    def _fail(self, exc: BaseException, route: str) -> UpstreamError:
        if isinstance(exc, UpstreamError):
            return exc
        err = map_upstream_error(exc, route)
        # class name and status only: upstream messages may echo the prompt
        log.warning("upstream error route=%s kind=%s status=%s", route, type(exc).__name__, err.status)
        return err
