"""App factory and lifecycle: shared resources live in the app, loaded once.

Request ids. A client's ``x-request-id`` is kept (logged, audited, returned) only in a strict
safe form: a UUID (``8-4-4-4-12`` hex), a ULID (26 Crockford base-32 capitals), or one of ours
(``req_<32 hex>``, ``rid_<32 hex>``). Any other value may carry personal data
(``Lena-Fischer-078-05-1120``), so it is neither stored nor sent back (a response header can
end up in another party's access log): the request is recorded under ``rid_<keyed hash of the
value>`` (HMAC-SHA256 with ``hash_key``, else a per-process key; the same id gives the same
``rid_`` while the key stays), and that is the ``x-request-id`` the response carries.

Operations endpoints. ``/readyz`` and ``/metrics`` require ``Authorization: Bearer <key>`` when
``ops.key_sha256`` is set; with ``ops.port`` they (and ``/healthz``) are served on that separate
port by a second small app started once the runtime is up, and the API port answers 404 there.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
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

# The only client request ids kept as they are (module docstring): UUID, ULID, ours.
_SAFE_REQUEST_ID = re.compile(
    r"^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|(?=[0-9A-HJKMNP-TV-Z]*[A-HJKMNP-TV-Z])[0-9A-HJKMNP-TV-Z]{26}"
    r"|(?:req|rid)_[0-9a-f]{32})$")
REQUEST_ID_KEY = web.RequestKey("request_id", str)   # the id we log, audit and return
REQUEST_ID_HASH_KEY = web.AppKey("request_id_hash_key", bytes)
OPS_PATHS = frozenset({"/readyz", "/metrics"})
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


def resolve_request_id(client_id: str, key: bytes) -> str:
    """The id to record and return for a request whose ``x-request-id`` is ``client_id``."""
    if not client_id:
        return "req_" + uuid.uuid4().hex
    if _SAFE_REQUEST_ID.match(client_id):
        return client_id
    return "rid_" + hmac.new(key, client_id.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()[:32]


@web.middleware
async def request_id_middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                                ) -> web.StreamResponse:
    rid = resolve_request_id(request.headers.get("x-request-id", ""), request.app[REQUEST_ID_HASH_KEY])
    request[REQUEST_ID_KEY] = rid
    try:
        resp = await handler(request)
    except TrustProxyError as err:
        if err.status >= 500:
            # our own wording (a guard's name, a rule id: never the caller's text), so an
            # operator can tell a scorer timeout from a detector error
            log.warning("request failed request_id=%s code=%s kind=%s detail=%s", rid, err.code,
                        type(err).__name__, err.message)
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


def authenticate_ops(settings: Settings, header: str | None) -> None:
    """``/readyz`` and ``/metrics``: the operations key, if one is configured."""
    want = settings.ops.key_sha256
    if want is None:
        return
    if not header or not header.startswith("Bearer "):
        raise AuthenticationError("This endpoint needs the operations key: send 'Authorization: Bearer <key>'.")
    if not hmac.compare_digest(hash_key(header[7:].strip()), want):
        raise AuthenticationError("Invalid operations key.")


@web.middleware
async def auth_middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                          ) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    if request.path.startswith("/v1/"):
        header = request.headers.get("Authorization")
        if header is None and "x-api-key" in request.headers:  # the Anthropic SDK and Claude Code send it here
            header = "Bearer " + request.headers["x-api-key"]
        request[CLIENT_KEY] = authenticate(settings, header)
    elif request.path in OPS_PATHS:
        if settings.ops.port is not None:  # served on the operations port only
            raise NotFound("Unknown endpoint for this port (operations endpoints are on the operations port).")
        authenticate_ops(settings, request.headers.get("Authorization"))
    return await handler(request)


@web.middleware
async def _ops_middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                          ) -> web.StreamResponse:
    try:
        if request.path in OPS_PATHS:
            authenticate_ops(request.app[SETTINGS], request.headers.get("Authorization"))
        return await handler(request)
    except TrustProxyError as err:
        return error_response(err)
    except web.HTTPNotFound:
        return error_response(NotFound("Unknown endpoint; the operations port serves /healthz, /readyz, /metrics."))


class OpsServer:
    """The operations port: /healthz, /readyz, /metrics of the main app's runtime."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runner: web.AppRunner | None = None

    async def start(self, app: web.Application) -> None:
        from trustproxy.server import routes

        port = self.settings.ops.port
        if port is None:
            return
        ops = web.Application(middlewares=[_ops_middleware])
        ops[SETTINGS] = self.settings
        ops[RUNTIME] = app[RUNTIME]
        ops.router.add_get("/healthz", routes.healthz)
        ops.router.add_get("/readyz", routes.readyz)
        ops.router.add_get("/metrics", routes.metrics)
        self.runner = web.AppRunner(ops, access_log=None)
        await self.runner.setup()
        host = self.settings.ops.host or self.settings.host
        await web.TCPSite(self.runner, host, port).start()
        log.info("operations endpoints on http://%s:%s (/healthz, /readyz, /metrics)", host, port)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


OPS_SERVER = web.AppKey("ops_server", OpsServer)


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
    app[REQUEST_ID_HASH_KEY] = (settings.hash_key or "").encode("utf-8") or secrets.token_bytes(32)
    ops = app[OPS_SERVER] = OpsServer(settings)
    app[IN_FLIGHT] = InFlight()
    app.cleanup_ctx.append(_runtime_ctx)
    app.on_startup.append(ops.start)  # after the runtime: the probe answers once it is up

    async def _stop_ops(app: web.Application) -> None:
        await ops.stop()

    app.on_shutdown.append(_stop_ops)
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
