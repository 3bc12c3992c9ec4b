"""A tiny application that talks to its trustproxy sidecar as if it were OpenAI.

The only change an application needs is the base URL (and, if the proxy requires client keys,
the key the proxy issued to it instead of the provider key, which only the proxy holds).
"""

from __future__ import annotations

import os
import time
import urllib.request

from openai import OpenAI


def wait_for_sidecar(base_url: str, timeout: float) -> None:
    """Wait until the sidecar is ready (models loaded): orchestrators that cannot order start-up
    on health (podman-compose, plain `docker run`) start both containers at once."""
    ready = base_url.rsplit("/v1", 1)[0] + "/readyz"
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(ready, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"the trustproxy sidecar was not ready within {timeout:.0f} s")
        time.sleep(1)


def main() -> None:
    wait_for_sidecar(os.environ.get("OPENAI_BASE_URL", "http://localhost:8080/v1"),
                     float(os.environ.get("SIDECAR_WAIT_SECONDS", "180")))
    client = OpenAI(
        base_url=os.environ.get("OPENAI_BASE_URL", "http://localhost:8080/v1"),
        api_key=os.environ.get("TRUSTPROXY_API_KEY", "unused-on-loopback"),
    )
    model = os.environ.get("MODEL", "echo")
    reply = client.chat.completions.create(
        model=model,
        messages=[{"role": "user",
                   "content": "Draft a reply to Jane Doe (jane.doe@example.com) about her order."}],
    )
    # The provider saw placeholders; the reply here has the real values restored.
    print(reply.choices[0].message.content)


if __name__ == "__main__":
    main()
