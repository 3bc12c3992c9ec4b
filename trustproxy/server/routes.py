"""OpenAI-compatible routes. Everything under /v1 not listed here answers 404: nothing reaches a
provider that the proxy has not screened."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from aiohttp import web

from trustproxy.doors.codec import ReplyCodec, StreamEncoder
from trustproxy.errors import (GuardFailed, InvalidRequest, NotFound, PolicyBlocked, TrustProxyError,
                               UpstreamError)
from trustproxy.server.app import AUDITED, CLIENT_KEY, REQUEST_ID_KEY, RUNTIME, SETTINGS, now_ms
from trustproxy.server.request import RequestContext
from trustproxy.doors.common import loads_strict
from trustproxy.doors.embeddings import EmbeddingResponse, parse_embeddings
from trustproxy.doors.openai_chat import parse_chat
from trustproxy.server.sse import DONE, event

log = logging.getLogger("trustproxy.server")


async def read_json(request: web.Request) -> Any:
    """The body of a door's request, read strictly (``doors.common.loads_strict``): NaN,
    Infinity, huge integers and deep nesting are a 400 in the door's error shape."""
    if request.content_length is not None and request.content_length > request.app[SETTINGS].max_body_bytes:
        from trustproxy.errors import PayloadTooLarge
        raise PayloadTooLarge("The request body is larger than the configured limit.")
    raw = await request.read()
    return loads_strict(raw)


def _headers(ctx: RequestContext) -> dict[str, str]:
    h = {"x-request-id": ctx.request_id, "x-trustproxy-policy": ctx.policy_name,
         "x-trustproxy-policy-version": ctx.policy_version}
    if ctx.mask.entities:
        h["x-trustproxy-entities"] = ",".join(f"{t}={n}" for t, n in sorted(ctx.mask.entities.items()))
    return h


class _ChatEncoder:
    """The chat-completions stream: the screened canonical chunks themselves."""

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        return event(chunk)

    def end(self) -> bytes:
        return DONE

    def error(self, err: TrustProxyError) -> bytes:
        return event(err.body())


class ChatCodec:
    """The chat-completions door answers with the canonical reply as it is."""

    def complete(self, resp: dict[str, Any]) -> dict[str, Any]:
        return resp

    def encoder(self) -> StreamEncoder:
        return _ChatEncoder()


async def chat_completions(request: web.Request) -> web.StreamResponse:
    body = parse_chat(await read_json(request))
    return await serve(request, body, ChatCodec())


async def serve(request: web.Request, body: dict[str, Any], codec: ReplyCodec) -> web.StreamResponse:
    """Screen a canonical (chat-completions) request, call the provider, screen the reply and
    answer through the door's codec. Every door ends here."""
    rt = request.app[RUNTIME]
    ctx = RequestContext.open(rt, request[REQUEST_ID_KEY], request.get(CLIENT_KEY), body["model"], stream=body["stream"])
    request[AUDITED] = True
    try:
        await ctx.screen_request(body)
        if body["stream"]:
            return await _stream(request, ctx, body, codec.encoder())
        return await _complete(ctx, body, codec)
    except asyncio.CancelledError:
        ctx.outcome("client_disconnected", 499)
        raise
    except TrustProxyError as err:
        ctx.outcome_from_error(err)
        raise
    finally:
        ctx.close()


async def _complete(ctx: RequestContext, body: dict[str, Any], codec: ReplyCodec) -> web.Response:
    t0 = now_ms()
    try:
        resp = await ctx.rt.provider.chat(ctx.route, body)
    finally:
        ctx.latency["provider"] = round(now_ms() - t0, 3)
    screen = ctx.response_screen()
    t1 = now_ms()
    resp = screen.reply(resp)
    for choice in resp["choices"]:
        try:
            choice["message"] = await screen.screen_message(choice["index"], choice["message"])
        except PolicyBlocked as blocked:
            ctx.record_content_block(blocked)
            choice["message"] = {"role": "assistant", "content": ctx.policy.output.toxicity.block_message}
            choice["finish_reason"] = "content_filter"
    ctx.latency["screening"] = round(now_ms() - t1, 3)
    ctx.collect(screen)
    headers = _headers(ctx)
    if ctx.flags:
        headers["x-trustproxy-flags"] = ",".join(sorted(set(ctx.flags)))
    out = codec.complete(resp)
    ctx.outcome("blocked" if ctx.blocked_reason else "ok", 200)
    return web.json_response(out, headers=headers, dumps=lambda o: json.dumps(o, ensure_ascii=False))


async def _stream(request: web.Request, ctx: RequestContext, body: dict[str, Any], enc: StreamEncoder
                  ) -> web.StreamResponse:
    rt = ctx.rt
    t0 = now_ms()
    chunks = await rt.provider.chat_stream(ctx.route, body)  # errors here are plain JSON errors
    async with contextlib.aclosing(chunks):  # every way out closes the upstream stream
        return await _relay(request, ctx, chunks, t0, enc)


async def _relay(request: web.Request, ctx: RequestContext, chunks: Any, t0: float,
                 enc: StreamEncoder) -> web.StreamResponse:
    rt = ctx.rt
    ctx.latency["provider_first_byte"] = round(now_ms() - t0, 3)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                       **_headers(ctx)})
    await resp.prepare(request)
    screen = ctx.response_screen()
    rt.metrics.active_streams.inc()
    last: dict[str, Any] = {}
    try:
        try:
            async for chunk in chunks:
                last = chunk
                t1 = now_ms()
                outs = await screen.on_chunk(chunk)
                ctx.latency["screening"] = ctx.latency.get("screening", 0.0) + now_ms() - t1
                if outs:  # one write per upstream chunk
                    await resp.write(b"".join(enc.chunk(out) for out in outs))
            missing = await screen.unfinished()
            if not screen.choices or len(missing) == len(screen.choices):
                raise UpstreamError("The provider's stream ended before the reply was complete.", status=502,
                                    code="upstream_stream_incomplete")
            # litellm forwards only the first choice's finish chunk when n > 1: the stream ended
            # cleanly (a break raises), so finish the others with what their chains still hold
            shell = {k: last.get(k) for k in ("id", "object", "created", "model") if last.get(k) is not None}
            for idx in missing:
                tail = await screen.finish_choice(idx)
                await resp.write(enc.chunk({**shell, "choices": [{"index": idx, "delta": tail, "finish_reason": "stop"}]}))
            await resp.write(enc.end())
            ctx.outcome("blocked" if ctx.blocked_reason else "ok", 200)
        except PolicyBlocked as blocked:
            ctx.record_content_block(blocked)
            shell = {k: last.get(k) for k in ("id", "created", "model") if last.get(k) is not None}
            for idx in screen.choices or [0]:
                await resp.write(enc.chunk({**shell, "object": "chat.completion.chunk",
                                            "choices": [{"index": idx, "delta": {}, "finish_reason": "content_filter"}]}))
            await resp.write(enc.error(PolicyBlocked(blocked.message, code="content_filter")))
            ctx.outcome("blocked", 200)
        except (TrustProxyError, Exception) as exc:  # noqa: BLE001 - the stream must end with an error event
            if isinstance(exc, (ConnectionResetError, asyncio.CancelledError)):
                raise
            err = exc if isinstance(exc, TrustProxyError) else GuardFailed("Screening the reply failed.")
            if not isinstance(exc, TrustProxyError):
                log.error("stream screening error request_id=%s kind=%s", ctx.request_id, type(exc).__name__)
            ctx.outcome_from_error(err)
            await resp.write(enc.error(err))
    except (ConnectionResetError, asyncio.CancelledError):
        ctx.outcome("client_disconnected", 499)
        raise  # the caller's aclosing closes the upstream call
    finally:
        ctx.latency["screening"] = round(ctx.latency.get("screening", 0.0), 3)
        # provider: the upstream stream, less the time spent screening it
        ctx.latency["provider"] = round(now_ms() - t0 - ctx.latency["screening"], 3)
        ctx.collect(screen)
        rt.metrics.active_streams.dec()
    with _suppress_disconnect():
        await resp.write_eof()
    return resp


class _suppress_disconnect:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> bool:
        return exc[0] is not None and issubclass(exc[0], ConnectionResetError)


async def embeddings(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    body = parse_embeddings(await read_json(request))
    ctx = RequestContext.open(rt, request[REQUEST_ID_KEY], request.get(CLIENT_KEY), body["model"], stream=False)
    request[AUDITED] = True
    try:
        await ctx.screen_request(body)
        t0 = now_ms()
        # rebuilt from the declared reply model: nothing undeclared reaches the client
        resp = EmbeddingResponse.model_validate(await rt.provider.embed(ctx.route, body)).model_dump(
            exclude_unset=True)
        ctx.latency["provider"] = round(now_ms() - t0, 3)
        ctx.outcome("ok", 200)
        return web.json_response(resp, headers=_headers(ctx))
    except TrustProxyError as err:
        ctx.outcome_from_error(err)
        raise
    finally:
        ctx.close()


async def list_models(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    created = int(time.time())
    data = [{"id": name, "object": "model", "created": created, "owned_by": "trustproxy"}
            for name in settings.routes]
    return web.json_response({"object": "list", "data": data})


async def inspect(request: web.Request) -> web.Response:
    """Dry run (``trustproxy.dryrun``): what would be detected and what the provider would see.
    ``{"text": ...}`` or ``{"request": <a request body>}``, optional ``policy`` (one the client
    may use, else 404) and ``reply`` (a scripted provider reply: what the user would get back).
    Calls no provider."""
    from trustproxy.dryrun import dry_run, parse_input
    from trustproxy.playground.access import RuntimeGuards, resolve, route_zero_data_retention

    rt = request.app[RUNTIME]
    raw = await read_json(request)
    if not isinstance(raw, dict) or not (isinstance(raw.get("text"), str) or isinstance(raw.get("request"), dict)):
        raise InvalidRequest("Send {\"text\": \"...\"} or {\"request\": {...}}, \"policy\": optional name.",
                             param="text")
    reply = raw.get("reply")
    if reply is not None and not isinstance(reply, str):
        raise InvalidRequest("Field 'reply' must be text.", param="reply")
    door = raw.get("door")
    if door is not None and not isinstance(door, str):
        raise InvalidRequest("Field 'door' must be text.", param="door")
    parsed = parse_input(raw["request"] if isinstance(raw.get("request"), dict) else raw["text"], door)
    client = request.get(CLIENT_KEY)
    loaded = resolve(rt, client, raw.get("policy"), route=parsed.route)
    from trustproxy.inspection import check_budget, check_text_budget

    # the same 413 uninspectable as the request path
    if parsed.kind == "text":
        check_text_budget(parsed.doc["input"], loaded.policy)
    else:
        check_budget(parsed.doc, loaded.policy)
    result = await dry_run(loaded.policy, loaded.version, parsed, RuntimeGuards(rt), reply=reply,
                           with_reply=reply is not None,
                           zero_data_retention=route_zero_data_retention(rt.settings, parsed.route))
    request[AUDITED] = True
    rt.observe_refusal(request[REQUEST_ID_KEY], client, 200, None, outcome="ok", route="inspect", loaded=loaded)
    return web.json_response(result.to_json(), dumps=lambda o: json.dumps(o, ensure_ascii=False))


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    rt = request.app.get(RUNTIME)
    if rt is None or not rt.ready:
        return web.json_response({"status": "starting"}, status=503)
    pol = rt.policies.status()
    body = {"status": "ok" if pol.get("ok", True) else "degraded", "policies": pol,
            "scorers": rt.scorer_status(), "languages": rt.language_status(), "routes": sorted(rt.settings.routes)}
    # an invalid edit keeps the previous policies serving: still ready, with the error reported
    return web.json_response(body, status=200)


async def metrics(request: web.Request) -> web.Response:
    data, ctype = request.app[RUNTIME].metrics.render()
    resp = web.Response(body=data)
    resp.headers["Content-Type"] = ctype
    return resp


async def not_found(request: web.Request) -> web.Response:
    # the path is the caller's text: not echoed
    raise NotFound(f"Unknown endpoint for {request.method}: this proxy serves /v1/chat/completions, "
                   "/v1/responses, /v1/messages, /v1/embeddings, /v1/models, /v1/trust/inspect and "
                   "/v1/trust/playground.")


def setup(app: web.Application) -> None:
    from trustproxy import playground

    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/embeddings", embeddings)
    from trustproxy.doors.anthropic_messages import error_body
    from trustproxy.server import doors_routes  # it imports serve() from here
    from trustproxy.server.app import register_error_renderer

    register_error_renderer("/v1/messages", error_body)  # Anthropic's error shape on its door
    app.router.add_post("/v1/responses", doors_routes.responses)
    app.router.add_post("/v1/messages", doors_routes.messages)
    app.router.add_post("/v1/messages/count_tokens", doors_routes.count_tokens)
    app.router.add_get("/v1/models", list_models)
    app.router.add_post("/v1/trust/inspect", inspect)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    playground.setup(app)
    app.router.add_route("*", "/v1/{tail:.*}", not_found)
