"""aiohttp server: app factory, OpenAI-compatible routes, middlewares."""

from trustproxy.server.app import create_app, run

__all__ = ["create_app", "run"]
