"""A tiny application that talks to its trustproxy sidecar as if it were OpenAI.

The only change an application needs is the base URL (and, if the proxy requires client keys,
the key the proxy issued to it instead of the provider key, which only the proxy holds).
"""

from __future__ import annotations

import os

from openai import OpenAI


def main() -> None:
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
