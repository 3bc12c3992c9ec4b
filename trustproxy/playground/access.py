"""Who may dry-run which policy, whether the playground answers at all, and the runtime's
guards for a dry run.

Tenant scoping (inspect, explain over HTTP, the playground): without configured clients the
proxy has no tenants (a single-user loopback deployment) and every loaded policy may be tried.
With clients, a client may try only what can apply to its own requests, plus the default:

- a client with its own policy: that policy and the default (its policy wins over any route's);
- a client without one: every route's policy and the default.

Any other name, loaded or not, answers 404 ``Unknown policy.``: the answer does not tell a
client whether another tenant's policy exists.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from trustproxy.errors import NotFound
from trustproxy.policy.loader import LoadedPolicy
from trustproxy.policy.schema import Policy
from trustproxy.settings import Client, Settings


def playground_available(settings: Settings) -> bool:
    """On when configured so and the page can demand a key: on loopback, or with client keys.
    An open non-loopback listener (``allow_unauthenticated``) never serves it."""
    return settings.playground.enabled and (settings.is_loopback() or bool(settings.clients))


def entitled(settings: Settings, policies: dict[str, LoadedPolicy], client: Client | None) -> list[str]:
    """The names ``client`` may dry-run, sorted, default first."""
    if not settings.clients:
        names = set(policies)
    elif client is not None and client.policy:
        names = {client.policy, settings.default_policy}
    else:
        names = {r.policy for r in settings.routes.values() if r.policy} | {settings.default_policy}
    names &= set(policies)
    return sorted(names, key=lambda n: (n != settings.default_policy, n))


def resolve(rt: Any, client: Client | None, name: Any, *, route: str | None = None) -> LoadedPolicy:
    """The policy a dry run uses: ``name`` if given and the client may use it; else what a real
    request would get (the client's, else the route's, else the default). 404 otherwise."""
    policies: dict[str, LoadedPolicy] = rt.policies.policies
    allowed = entitled(rt.settings, policies, client)
    if name is None or name == "":
        tenant = client.policy if client is not None else None
        route_cfg = rt.settings.routes.get(route) if route else None
        for candidate in (tenant, route_cfg.policy if route_cfg else None, rt.settings.default_policy):
            if candidate:
                name = candidate
                break
    if not isinstance(name, str) or name not in allowed:
        raise NotFound("Unknown policy.", param="policy", code="policy_not_found")
    return policies[name]


def route_zero_data_retention(settings: Settings, route: str | None) -> bool | None:
    """Whether a request body's route is zero-data-retention (None: no known route)."""
    cfg = settings.routes.get(route) if route else None
    return None if cfg is None else cfg.zero_data_retention


class RuntimeGuards:
    """The server runtime as the dry run's ``Guards``: the process-wide detectors and scorers,
    heavy work in the guard pool with the detection timeout."""

    def __init__(self, rt: Any) -> None:
        self._rt = rt
        self.hash_key: bytes = rt.hash_key

    def detector(self, policy: Policy) -> Any:
        return self._rt.detector(policy)

    def batcher(self, policy: Policy) -> Any:
        return self._rt.batcher(policy)

    def run(self, fn: Callable[[], Any]) -> Awaitable[Any]:
        result: Awaitable[Any] = self._rt.run_guard(fn)
        return result
