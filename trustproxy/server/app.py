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


def error_response(err: TrustProxyError, request_id: str | None = None) -> web.Response:
    headers = dict(err.headers)
    if request_id:
        headers["x-request-id"] = request_id
    return web.json_response(err.body(), status=err.status, headers=headers)


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
        return error_response(err, rid)
    except web.HTTPRequestEntityTooLarge:
        _audit_refusal(request, 413, "payload_too_large")
        return error_response(PayloadTooLarge("The request body is larger than the configured limit."), rid)
    except web.HTTPException as exc:
        if exc.status == 404 or exc.status == 405:
            http_err: TrustProxyError = NotFound(
                f"Unknown endpoint for {request.method} (the path is not echoed back).") \
                if exc.status == 404 else InvalidRequest(f"Method {request.method} is not allowed here.",
                                                         status=405, code="method_not_allowed")
            return error_response(http_err, rid)
        raise
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception as exc:  # noqa: BLE001 - never a stack trace or user text to the client
        log.error("unhandled error request_id=%s kind=%s", rid, type(exc).__name__)
        _audit_refusal(request, 500, "internal_error")
        return error_response(TrustProxyError("Internal error in the trust layer.", code="internal_error"), rid)
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
        request[CLIENT_KEY] = authenticate(request.app[SETTINGS], request.headers.get("Authorization"))
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
    from trustproxy.server.admission import IN_FLIGHT, InFlight, admission_middleware

    app = web.Application(middlewares=[request_id_middleware, auth_middleware, admission_middleware],
                          client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[IN_FLIGHT] = InFlight()
    app.cleanup_ctx.append(_runtime_ctx)
    routes.setup(app)
    return app


def run(settings: Settings, sock: Any = None) -> None:
    """Serve until SIGTERM/SIGINT; in-flight requests get ``shutdown_grace_seconds`` to finish.
    ``sock``: an already bound listening socket (a worker under ``serve --workers N``)."""
    app = create_app(settings)

    async def _ready(app: web.Application) -> None:  # after the runtime (models, policies) loaded
        log.info("trustproxy ready; listening on http://%s:%s", settings.host, settings.port)

    app.on_startup.append(_ready)
    where: dict[str, Any] = {"sock": sock} if sock is not None else {"host": settings.host, "port": settings.port}
    web.run_app(app, **where, shutdown_timeout=settings.shutdown_grace_seconds,
                handler_cancellation=True, access_log=None, print=None)


def now_ms() -> float:
    return time.perf_counter() * 1000.0
