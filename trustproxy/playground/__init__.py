"""The policy playground: a static page served by the proxy (``static/``: plain HTML, CSS and
one script, no build step, no third-party origin) and its one JSON endpoint, both calling the
one dry run (``trustproxy.dryrun``). See docs/playground.md."""

from trustproxy.playground.handlers import setup

__all__ = ["setup"]
