"""Admission control: a bounded number of requests in flight per worker (and per client).

One middleware, after authentication (it needs the client). Every ``POST /v1/...`` request
counts while it is served. When the worker is full, or a client is at its own limit, or the
audit writer's buffer has no room for the events of the requests already admitted, the request
is refused at once with :class:`~trustproxy.errors.Overloaded` (503, or 429 for a client's own
limit) carrying ``Retry-After``; the error middleware renders it in the door's shape, and
``trustproxy_overload_total{reason}`` counts it. Nothing is queued here: the guard pools have
their own bounded queues (``trustproxy.execution``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import web

from trustproxy.errors import Overloaded

class InFlight:
    """Requests being served by this worker (event-loop only: no lock)."""

    def __init__(self) -> None:
        self.total = 0
        self.by_client: Counter[str] = Counter()


IN_FLIGHT = web.AppKey("in_flight", InFlight)


def _admitted(request: web.Request) -> bool:
    return request.method == "POST" and request.path.startswith("/v1/")


@web.middleware
async def admission_middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                               ) -> web.StreamResponse:
    from trustproxy.server.app import CLIENT_KEY, RUNTIME

    if not _admitted(request):
        return await handler(request)
    rt = request.app.get(RUNTIME)
    if rt is None:
        return await handler(request)
    ex = rt.settings.execution
    state = request.app[IN_FLIGHT]
    client = request.get(CLIENT_KEY)
    name = getattr(client, "name", None)
    ra = ex.retry_after_seconds
    if state.total >= ex.max_in_flight:
        rt.metrics.overload("in_flight")
        raise Overloaded(reason="in_flight", retry_after=ra)
    if name is not None and ex.max_in_flight_per_client is not None and \
            state.by_client[name] >= ex.max_in_flight_per_client:
        rt.metrics.overload("client")
        raise Overloaded("This client has too many requests in flight; retry shortly.", reason="client",
                         retry_after=ra, status=429, code="rate_limit_exceeded")
    audit = rt.audit
    backlog = getattr(audit, "backlog", None)
    if backlog is not None and backlog() + state.total + 1 > audit.capacity:
        rt.metrics.overload("audit")
        raise Overloaded("The audit trail is behind; retry shortly.", reason="audit", retry_after=ra)
    state.total += 1
    if name is not None:
        state.by_client[name] += 1
    rt.metrics.in_flight.inc()
    try:
        return await handler(request)
    finally:
        state.total -= 1
        if name is not None:
            state.by_client[name] -= 1
            if not state.by_client[name]:
                del state.by_client[name]
        rt.metrics.in_flight.dec()
