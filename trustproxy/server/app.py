"""App factory and lifecycle: shared resources live in the app, loaded once."""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from trustproxy.errors import AuthenticationError, InvalidRequest, NotFound, PayloadTooLarge, TrustProxyError
from trustproxy.server.runtime import Runtime
from trustproxy.settings import Client, Settings, hash_key

log = logging.getLogger("trustproxy.server")

SETTINGS = web.AppKey("settings", Settings)
RUNTIME = web.AppKey("runtime", Runtime)

# A client's x-request-id is reused only if it looks like a correlation token: it must hold a
# letter (an SSN or phone number never does) and no '@'. Anything else gets our own id.
_REQUEST_ID = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9._:-]{6,128}$")
REQUEST_ID_KEY = web.RequestKey("request_id", str)
CLIENT_KEY = web.RequestKey("client", object)
AUDITED = web.RequestKey("audited", bool)  # a RequestContext exists and will write the audit event


ErrorRenderer = Callable[[TrustProxyError], dict[str, Any]]
# path prefix -> the door's error body; a door registers its own shape (OpenAI's is the default)
_ERROR_RENDERERS: dict[str, ErrorRenderer] = {}


def register_error_renderer(prefix: str, render: ErrorRenderer) -> None:
    """Errors of requests under ``prefix`` (e.g. ``/v1/messages``) use ``render(err)`` as body."""
    _ERROR_RENDERERS[prefix] = render


def render_error(err: TrustProxyError, path: str = "") -> dict[str, Any]:
    """The error body in the shape of the door serving ``path`` (longest prefix wins)."""
    best = max((p for p in _ERROR_RENDERERS if path.startswith(p)), key=len, default=None)
    return _ERROR_RENDERERS[best](err) if best is not None else err.body()


def error_response(err: TrustProxyError, request_id: str | None = None, path: str = "") -> web.Response:
    """Status and headers (Retry-After ...) are the error's whatever the door's body shape."""
    headers = dict(err.headers)
    if request_id:
        headers["x-request-id"] = request_id
    return web.json_response(render_error(err, path), status=err.status, headers=headers)


@web.middleware
async def request_id_middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                                ) -> web.StreamResponse:
    rid = request.headers.get("x-request-id", "")
    if not _REQUEST_ID.match(rid):
        rid = "req_" + uuid.uuid4().hex
    request[REQUEST_ID_KEY] = rid
    try:
        resp = await handler(request)
    except TrustProxyError as err:
        _audit_refusal(request, err.status, err.code)
        return error_response(err, rid, request.path)
    except web.HTTPRequestEntityTooLarge:
        _audit_refusal(request, 413, "payload_too_large")
        return error_response(PayloadTooLarge("The request body is larger than the configured limit."), rid,
                              request.path)
    except web.HTTPException as exc:
        if exc.status == 404 or exc.status == 405:
            http_err: TrustProxyError = NotFound(
                f"Unknown endpoint for {request.method} (the path is not echoed back).") \
                if exc.status == 404 else InvalidRequest(f"Method {request.method} is not allowed here.",
                                                         status=405, code="method_not_allowed")
            return error_response(http_err, rid, request.path)
        raise
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception as exc:  # noqa: BLE001 - never a stack trace or user text to the client
        log.error("unhandled error request_id=%s kind=%s", rid, type(exc).__name__)
        _audit_refusal(request, 500, "internal_error")
        return error_response(TrustProxyError("Internal error in the trust layer.", code="internal_error"), rid,
                              request.path)
    if not resp.prepared:
        resp.headers["x-request-id"] = rid
    return resp


def _audit_refusal(request: web.Request, status: int, code: str | None) -> None:
    """Requests refused before a RequestContext existed (bad JSON, auth, unknown model, size)
    still leave exactly one audit event."""
    if not request.path.startswith("/v1/") or request.get(AUDITED):
        return
    rt = request.app.get(RUNTIME)
    if rt is not None:
        rt.observe_refusal(request[REQUEST_ID_KEY], request.get(CLIENT_KEY), status, code)


def authenticate(settings: Settings, header: str | None) -> Client | None:
    """Constant-time check of ``Authorization: Bearer <key>`` against stored hashes."""
    if not settings.clients:
        return None
    if not header or not header.startswith("Bearer "):
        raise AuthenticationError("Missing API key: send 'Authorization: Bearer <key>'.")
    digest = hash_key(header[7:].strip())
    found = None
    for client in settings.clients:  # no early exit: time does not depend on which client
        if hmac.compare_digest(digest, client.key_sha256):
            found = client
    if found is None:
        raise AuthenticationError("Invalid API key.")
    return found


@web.middleware
async def auth_middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                          ) -> web.StreamResponse:
    if request.path.startswith("/v1/"):
        header = request.headers.get("Authorization")
        if header is None and "x-api-key" in request.headers:  # the Anthropic SDK and Claude Code send it here
            header = "Bearer " + request.headers["x-api-key"]
        request[CLIENT_KEY] = authenticate(request.app[SETTINGS], header)
    return await handler(request)


async def _runtime_ctx(app: web.Application) -> AsyncIterator[None]:
    runtime = await Runtime.start(app[SETTINGS])
    app[RUNTIME] = runtime
    try:
        yield
    finally:
        await runtime.close()


def create_app(settings: Settings) -> web.Application:
    from trustproxy.server import routes

    settings.check_auth_safety()
    app = web.Application(middlewares=[request_id_middleware, auth_middleware],
                          client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_runtime_ctx)
    routes.setup(app)
    return app


def run(settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT; in-flight requests get ``shutdown_grace_seconds`` to finish."""
    app = create_app(settings)

    async def _ready(app: web.Application) -> None:  # after the runtime (models, policies) loaded
        log.info("trustproxy ready; listening on http://%s:%s", settings.host, settings.port)

    app.on_startup.append(_ready)
    web.run_app(app, host=settings.host, port=settings.port, shutdown_timeout=settings.shutdown_grace_seconds,
                handler_cancellation=True, access_log=None, print=None)


def now_ms() -> float:
    return time.perf_counter() * 1000.0
