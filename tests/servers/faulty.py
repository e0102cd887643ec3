"""An OpenAI-compatible server on 127.0.0.1 whose faults a test picks (fault injection).

``FaultyServer(embed=..., rerank=..., status=...)``: ``GET /v1/models`` lists ``MODEL`` (or answers
``status`` with a body echoing the ``Authorization`` header, as real providers do on a wrong key);
``POST /v1/embeddings`` and ``/v1/rerank`` answer ``embed(texts, n)`` / ``rerank(documents, n)``
(``n``: how many requests that route had before) as raw JSON text, so NaN, Infinity and booleans reach
the client as a server would send them. A route's function may instead return a :class:`Reply` for
a status, headers, or a body that drips or stops mid-way.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "faulty-model"


@dataclass
class Reply:
    body: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    drip_s: float = 0.0  # one byte every drip_s seconds (a body that never quite ends)
    cut: bool = False  # chunked, and the connection closes in the middle of the body


def vectors(texts: list, values: Callable[[int], list]) -> str:
    """An /embeddings answer, ``values(i)`` the i-th vector written as JSON text (NaN stays NaN)."""
    items = [f'{{"index": {i}, "embedding": [{", ".join(str(v) for v in values(i))}]}}' for i in range(len(texts))]
    return '{"data": [' + ", ".join(items) + "]}"


def scores(documents: list, values: Callable[[int], object]) -> str:
    """A cohere /rerank answer with ``values(i)`` as the i-th document's relevance_score (raw JSON text)."""
    items = [f'{{"index": {i}, "relevance_score": {values(i)}}}' for i in range(len(documents))]
    return '{"results": [' + ", ".join(items) + "]}"


class FaultyServer:
    def __init__(self, embed: Callable[[list, int], str | Reply] | None = None,
                 rerank: Callable[[list, int], str | Reply] | None = None, status: int = 200, model: str = MODEL):
        self.embed = embed or (lambda texts, n: vectors(texts, lambda i: [1.0, 0.5 + i]))
        self.rerank = rerank or (lambda docs, n: scores(docs, lambda i: 0.5))
        self.status, self.model = status, model
        self.counts: dict[str, int] = {}
        self.times: dict[str, list[float]] = {}

    def __enter__(self) -> FaultyServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, reply: Reply) -> None:
                data = reply.body.encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                if reply.cut:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    half = data[: len(data) // 2]
                    self.wfile.write(f"{len(data):x}\r\n".encode() + half)  # promises more than it sends
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if reply.drip_s:
                    try:
                        for byte in data:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(reply.drip_s)
                    except OSError:
                        self.close_connection = True
                    return
                self.wfile.write(data)

            def _refused(self) -> bool:
                if server.status == 200:
                    return False
                echoed = self.headers.get("Authorization", "")
                self._send(Reply(json.dumps({"error": {"message": f"Incorrect API key provided: {echoed}"}}),
                                 status=server.status))
                return True

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if not self._refused():
                    self._send(Reply(json.dumps({"object": "list", "data": [{"id": server.model, "object": "model"}]})))

            def do_POST(self) -> None:  # noqa: N802
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self._refused():
                    return
                route = self.path.rsplit("/", 1)[-1]
                n = server.counts.get(route, 0)
                server.counts[route] = n + 1
                server.times.setdefault(route, []).append(time.monotonic())
                if route == "embeddings":
                    reply = server.embed(payload.get("input") or [], n)
                else:
                    reply = server.rerank(payload.get("documents") or [], n)
                self._send(reply if isinstance(reply, Reply) else Reply(reply))

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.api_base = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
