"""A server that answers with malformed bodies (fault injection: no real server does this on purpose).

It speaks just enough of the OpenAI routes to pass rag_eval's start-up check (``GET /v1/models``),
then answers ``/v1/embeddings`` with one embedding too few and ``/v1/rerank`` without ``results``.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "broken-model"


class _Handler(BaseHTTPRequestHandler):
    def _answer(self, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._answer({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    def do_POST(self) -> None:  # noqa: N802
        payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path.endswith("/embeddings"):
            texts = payload.get("input") or []
            self._answer({"data": [{"index": i, "embedding": [0.1, 0.2]} for i in range(len(texts) - 1)]})
        else:
            self._answer({"scores": [0.5] * len(payload.get("documents") or [])})

    def log_message(self, *args) -> None:
        pass


class BrokenServer:
    def __enter__(self) -> BrokenServer:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.api_base = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
