"""A minimal, slow OpenAI-compatible upstream for the image smoke test (stdlib only).

It runs in the same pod as the proxy (shared loopback), so the smoke test can hold a stream
open while the proxy gets SIGTERM. It answers every chat completion with a stream of
SLOW_CHUNKS chunks, one every SLOW_DELAY seconds, then ``data: [DONE]``; non-streamed
requests get one JSON completion. It never echoes request content into logs.
"""

from __future__ import annotations

import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNKS = int(os.environ.get("SLOW_CHUNKS", "12"))
DELAY = float(os.environ.get("SLOW_DELAY", "0.5"))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # quiet: no request lines
        return

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
        base = {"id": "chatcmpl-smoke", "created": int(time.time()), "model": "slow"}
        if not body.get("stream"):
            out = json.dumps({**base, "object": "chat.completion", "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "slow reply."}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        for i in range(CHUNKS):
            delta = {"role": "assistant", "content": f"part {i}. "} if i == 0 else {"content": f"part {i}. "}
            chunk = {**base, "object": "chat.completion.chunk",
                     "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
            time.sleep(DELAY)
        end = {**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
        self.wfile.flush()


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("SLOW_PORT", "9100"))), Handler).serve_forever()
