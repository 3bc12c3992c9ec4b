"""``GET /playground`` (the static page) and ``POST /v1/trust/playground`` (its one JSON
endpoint). Dry runs only: no provider is called, nothing is stored, one audit event per call
(types and counts only, route ``playground``).

The endpoint takes ``{"op": ..., ...}`` (values only in POST bodies, never in URLs):

- ``policies``: the policies this caller may try (name, version, description);
- ``source``: the YAML of one of them (to start a draft from);
- ``run``: ``input`` (text, or a request body as an object or JSON text), optional ``reply``
  (a scripted provider reply; default: the echo of what the provider received) and optional
  ``draft`` (YAML): the live dry run, and with a valid draft its dry run and what changes;
- ``check``: validate ``draft`` (``policy check``'s ``file:line:col`` lines);
- ``test``: ``check``, then the draft's golden examples.
"""

from __future__ import annotations

import asyncio
import json
from importlib import resources
from typing import Any

from aiohttp import web

from trustproxy.dryrun import DryRun, ParsedInput, dry_run, golden_inspector, parse_input
from trustproxy.errors import InvalidRequest, NotFound, TrustProxyError
from trustproxy.playground.access import (RuntimeGuards, entitled, playground_available, resolve,
                                          route_zero_data_retention)
from trustproxy.playground.compare import compare
from trustproxy.playground.draft import DraftCheck, load_draft, runtime_problems
from trustproxy.policy.loader import LoadedPolicy

MAX_GOLDEN = 200
# One playground call at a time per process: its dry runs share the guard pool with live
# traffic, so a second one gets a fast 503 instead of queueing behind it.
BUSY = web.AppKey("playground_busy", asyncio.Semaphore)

# script-src 'self' only: no inline script, no eval, no third-party origin anywhere.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_SECURITY_HEADERS = {
    "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY", "Cache-Control": "no-store", "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_ASSETS = {"/playground": ("index.html", "text/html"), "/playground/app.js": ("app.js", "text/javascript"),
           "/playground/app.css": ("app.css", "text/css"),
           "/playground/favicon.svg": ("favicon.svg", "image/svg+xml")}


def _asset(name: str) -> bytes:
    return resources.files("trustproxy.playground").joinpath("static", name).read_bytes()


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, headers=_SECURITY_HEADERS,
                             dumps=lambda o: json.dumps(o, ensure_ascii=False))


async def page(request: web.Request) -> web.Response:
    from trustproxy.server.app import SETTINGS

    if not playground_available(request.app[SETTINGS]):
        raise NotFound("The playground is switched off on this proxy.")
    name, ctype = _ASSETS[request.path]
    return web.Response(body=_asset(name), content_type=ctype, charset="utf-8", headers=_SECURITY_HEADERS)


def _text(raw: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    v = raw.get(key)
    if v is None and not required:
        return None
    if not isinstance(v, str):
        raise InvalidRequest(f"Field '{key}' must be text.", param=key)
    return v


_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


def _check_caller(request: web.Request, keyless: bool) -> None:
    """Only the page (or a script) of this proxy's own origin: JSON bodies only (a cross-site
    form or ``text/plain`` post cannot send one without a CORS preflight, which is never
    granted), an ``Origin``, when sent, equal to this host, and without client keys a loopback
    ``Host`` (so a rebinding DNS name cannot reach a keyless proxy)."""
    if request.content_type != "application/json":
        raise InvalidRequest("Send the body as application/json.", status=415, code="unsupported_media_type")
    host = request.headers.get("Host", "")
    origin = request.headers.get("Origin")
    if origin is not None and origin not in (f"http://{host}", f"https://{host}"):
        raise InvalidRequest("Cross-origin calls to the playground are refused.", status=403, code="cross_origin")
    if keyless and host.rsplit(":", 1)[0] not in _LOOPBACK_HOSTS and host not in _LOOPBACK_HOSTS:
        raise InvalidRequest("Without client keys the playground answers only to a loopback host name.",
                             status=403, code="loopback_only")


async def endpoint(request: web.Request) -> web.Response:
    from trustproxy.server.app import AUDITED, CLIENT_KEY, REQUEST_ID_KEY, RUNTIME, SETTINGS
    from trustproxy.server.routes import read_json

    settings = request.app[SETTINGS]
    if not playground_available(settings):
        raise NotFound("The playground is switched off on this proxy.")
    _check_caller(request, keyless=not settings.clients)
    rt = request.app[RUNTIME]
    client = request.get(CLIENT_KEY)
    raw = await read_json(request)
    if not isinstance(raw, dict) or raw.get("op") not in ("policies", "source", "run", "check", "test"):
        raise InvalidRequest("Send {\"op\": \"policies\" | \"source\" | \"run\" | \"check\" | \"test\", ...}.",
                             param="op")
    busy = request.app[BUSY]
    if busy.locked():
        raise TrustProxyError("The playground is busy with another dry run; try again in a moment.", status=503,
                              code="playground_busy", headers={"Retry-After": "1"})
    async with busy:
        out, loaded = await _dispatch(rt, settings, client, raw)
    request[AUDITED] = True
    rt.observe_refusal(request[REQUEST_ID_KEY], client, 200, None, outcome="ok", route="playground", loaded=loaded)
    return _json(out)


async def _dispatch(rt: Any, settings: Any, client: Any, raw: dict[str, Any]
                    ) -> tuple[dict[str, Any], LoadedPolicy | None]:
    op = raw["op"]
    live = rt.policies.policies
    names = entitled(settings, live, client)
    loaded: LoadedPolicy | None = None
    if op == "policies":
        out: dict[str, Any] = {"default": settings.default_policy, "policies": [
            {"name": n, "version": live[n].version, "description": live[n].policy.description,
             "chain": live[n].chain} for n in names]}
    else:
        parsed = _input(raw) if op == "run" else None
        loaded = resolve(rt, client, raw.get("policy"), route=parsed.route if parsed else None)
        if op == "source":
            out = {"policy": loaded.name, "version": loaded.version, "yaml": _source(loaded)}
        elif op == "run":
            assert parsed is not None
            out = await _run(rt, loaded, parsed, raw, {n: live[n] for n in names})
        else:
            out = await _check_or_test(rt, loaded, raw, {n: live[n] for n in names}, test=op == "test")
    return out, loaded


def _input(raw: dict[str, Any]) -> ParsedInput:
    value = raw.get("input")
    if isinstance(value, dict):
        return parse_input(value)
    text = _text(raw, "input", required=True)
    assert text is not None
    return parse_input(text)


def _source(loaded: LoadedPolicy) -> str:
    import yaml

    try:
        with open(loaded.path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        data = loaded.policy.model_dump(mode="json", exclude_defaults=True)
        return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


async def _draft(rt: Any, loaded: LoadedPolicy, raw: dict[str, Any], parents: dict[str, LoadedPolicy]) -> DraftCheck:
    text = _text(raw, "draft", required=True)
    assert text is not None
    # parsing, validating and composing is CPU work (and a temporary folder): off the event loop
    check: DraftCheck = await rt.run_guard(lambda: load_draft(text, loaded.name, parents))
    check.problems += runtime_problems(check, rt.policies.policies, hash_key=bool(rt.hash_key))
    return check


def _draft_json(check: DraftCheck) -> dict[str, Any]:
    return {"name": check.name, "ok": check.ok, "problems": check.problems,
            "version": check.loaded.version if check.loaded else None,
            "chain": check.loaded.chain if check.loaded else []}


async def _run(rt: Any, loaded: LoadedPolicy, parsed: ParsedInput, raw: dict[str, Any],
               parents: dict[str, LoadedPolicy]) -> dict[str, Any]:
    reply = _text(raw, "reply")
    guards = RuntimeGuards(rt)
    zdr = route_zero_data_retention(rt.settings, parsed.route)
    live_run = await dry_run(loaded.policy, loaded.version, parsed, guards, reply=reply, zero_data_retention=zdr)
    out: dict[str, Any] = {"live": live_run.to_json()}
    if raw.get("draft") is not None:
        check = await _draft(rt, loaded, raw, parents)
        d = _draft_json(check)
        if check.ok and check.loaded is not None:
            draft_run: DryRun = await dry_run(check.loaded.policy, check.loaded.version, parsed, guards, reply=reply,
                                              zero_data_retention=zdr)
            d["result"] = draft_run.to_json()
            out["diff"] = compare(live_run, draft_run)
        out["draft"] = d
    return out


async def _check_or_test(rt: Any, loaded: LoadedPolicy, raw: dict[str, Any], parents: dict[str, LoadedPolicy],
                         *, test: bool) -> dict[str, Any]:
    from trustproxy.policy.golden import check_example

    check = await _draft(rt, loaded, raw, parents)
    out = _draft_json(check)
    if not test:
        return out
    results: list[dict[str, Any]] = []
    if check.ok and check.loaded is not None:
        lp = check.loaded
        examples = lp.policy.tests
        if len(examples) > MAX_GOLDEN:
            raise InvalidRequest(f"A draft may carry at most {MAX_GOLDEN} golden examples here.", param="draft")
        inspect = golden_inspector(rt.detector, rt.hash_key)
        for i, t in enumerate(examples):
            try:
                r = await rt.run_guard(lambda i=i, t=t: check_example(lp, i, t, inspect))
            except TrustProxyError:
                raise
            results.append({"index": r.index, "name": r.name, "passed": r.passed, "failures": r.failures,
                            "detected": r.detected})
    out.update({"results": results, "passed": sum(r["passed"] for r in results),
                "failed": sum(not r["passed"] for r in results)})
    return out


def setup(app: web.Application) -> None:
    """Routes of the playground; call before any catch-all of ``/v1``."""
    app[BUSY] = asyncio.Semaphore(1)
    for path in _ASSETS:
        app.router.add_get(path, page)
    app.router.add_post("/v1/trust/playground", endpoint)
