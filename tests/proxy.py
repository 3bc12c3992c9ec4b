"""Run the real proxy as an aiohttp server on 127.0.0.1 in its own thread and event loop,
so sync clients (the official openai SDK) and async ones can both call it."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web

from trustproxy.server import create_app
from trustproxy.server.app import RUNTIME
from trustproxy.settings import Settings


class ProxyServer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="proxy", daemon=True)
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.app: web.Application | None = None

    def __enter__(self) -> "ProxyServer":
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=180)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    async def _start(self) -> None:
        self.app = create_app(self.settings)
        self.runner = web.AppRunner(self.app, handler_cancellation=True, access_log=None,
                                    shutdown_timeout=self.settings.shutdown_grace_seconds)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=60)
            self.runner = None
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    @property
    def runtime(self) -> Any:
        assert self.app is not None
        return self.app[RUNTIME]

    def call(self, coro: Any, timeout: float = 60) -> Any:
        """Run a coroutine on the proxy's loop (e.g. to reload policies now)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)
