"""Handlers of the agent doors: ``POST /v1/responses`` (OpenAI Responses), ``POST /v1/messages``
and ``POST /v1/messages/count_tokens`` (Anthropic Messages).

Thin adapters: parse with the door's strict model, translate to the canonical chat request, then
the one shared loop (``routes.serve``: mask, call, screen, restore) answers through the door's
reply codec. Errors on ``/v1/messages*`` are rendered in Anthropic's shape (the renderer is
registered in ``routes.setup``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from trustproxy.doors import anthropic_messages, openai_responses
from trustproxy.errors import GuardFailed, TrustProxyError
from trustproxy.server.app import AUDITED, CLIENT_KEY, REQUEST_ID_KEY, RUNTIME, SETTINGS
from trustproxy.server.request import RequestContext
from trustproxy.server.routes import _headers, read_json, serve


def _route_allows_state(request: web.Request, model: Any) -> bool:
    route = request.app[SETTINGS].routes.get(model) if isinstance(model, str) else None
    return bool(route is not None and route.allow_server_state)


async def responses(request: web.Request) -> web.StreamResponse:
    raw = await read_json(request)
    allow = _route_allows_state(request, raw.get("model") if isinstance(raw, dict) else None)
    req = openai_responses.parse(raw, allow_server_state=allow)
    body = req.to_canonical(forward_store=allow)
    return await serve(request, body, openai_responses.ResponsesCodec(req.model, store=bool(allow and req.store)))


async def messages(request: web.Request) -> web.StreamResponse:
    req = anthropic_messages.parse(await read_json(request))
    return await serve(request, req.to_canonical(), anthropic_messages.MessagesCodec(req.model))


async def count_tokens(request: web.Request) -> web.Response:
    """Counted locally on the masked request (what the provider would receive); no provider call."""
    req = anthropic_messages.parse(await read_json(request), anthropic_messages.CountTokensRequest)
    body = req.to_canonical()
    rt = request.app[RUNTIME]
    ctx = RequestContext.open(rt, request[REQUEST_ID_KEY], request.get(CLIENT_KEY), body["model"], stream=False)
    request[AUDITED] = True
    try:
        await ctx.screen_request(body)
        try:
            tokens = await rt.run_guard(rt.provider.count_tokens, ctx.route, body)
        except TrustProxyError:
            raise
        except Exception:  # noqa: BLE001 - a tokenizer failure names no value
            raise GuardFailed("Counting tokens failed.") from None
        ctx.outcome("ok", 200)
        return web.json_response({"input_tokens": tokens}, headers=_headers(ctx))
    except TrustProxyError as err:
        ctx.outcome_from_error(err)
        raise
    finally:
        ctx.close()

