"""Error bodies in the door's own shape (a registry by path prefix), headers kept whatever the shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes.providers import FakeOpenAI
from tests.proxy import ProxyServer
from trustproxy.errors import TrustProxyError
from trustproxy.server import app as app_module
from trustproxy.settings import Route, Settings


def _shape(err: TrustProxyError) -> dict[str, Any]:
    return {"type": "error", "error": {"type": err.type, "message": err.message}}


@pytest.fixture
def renderer() -> Iterator[None]:
    app_module.register_error_renderer("/v1/chat/completions", _shape)
    try:
        yield
    finally:
        app_module._ERROR_RENDERERS.pop("/v1/chat/completions", None)


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[ProxyServer, FakeOpenAI]]:
    with FakeOpenAI(model="m") as fake:
        p = fake.litellm_params()
        settings = Settings(routes={"m": Route(model=p["model"], api_base=p["api_base"], max_retries=0)},
                            audit={"stdout": False, "path": None})
        with ProxyServer(settings) as proxy:
            yield proxy, fake


def test_default_shape_is_openais(env: tuple[ProxyServer, FakeOpenAI]) -> None:
    proxy, _ = env
    r = httpx.post(proxy.base_url + "/chat/completions", content=b"{nope", timeout=20)
    assert r.status_code == 400
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}


def test_a_registered_door_shape_is_used_and_headers_are_kept(env: tuple[ProxyServer, FakeOpenAI],
                                                              renderer: None) -> None:
    proxy, fake = env
    r = httpx.post(proxy.base_url + "/chat/completions", content=b'{"stream": NaN}', timeout=20)
    assert r.status_code == 400
    assert r.json() == {"type": "error", "error": {"type": "invalid_request_error",
                                                   "message": r.json()["error"]["message"]}}
    assert r.headers["x-request-id"]
    fake.fail_status, fake.retry_after = 429, "7"
    try:
        r = httpx.post(proxy.base_url + "/chat/completions", timeout=20,
                       json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    finally:
        fake.fail_status = None
    assert r.status_code == 429 and r.json()["type"] == "error"
    assert r.headers["Retry-After"] == "7"
    # other doors keep their shape
    r = httpx.post(proxy.base_url + "/embeddings", content=b"[", timeout=20)
    assert "param" in r.json()["error"]


def test_longest_prefix_wins() -> None:
    app_module.register_error_renderer("/v1/x", lambda e: {"a": 1})
    app_module.register_error_renderer("/v1/x/y", lambda e: {"b": 2})
    try:
        err = TrustProxyError("m")
        assert app_module.render_error(err, "/v1/x/y/z") == {"b": 2}
        assert app_module.render_error(err, "/v1/x/q") == {"a": 1}
        assert app_module.render_error(err, "/v1/other") == err.body()
    finally:
        app_module._ERROR_RENDERERS.pop("/v1/x", None)
        app_module._ERROR_RENDERERS.pop("/v1/x/y", None)
