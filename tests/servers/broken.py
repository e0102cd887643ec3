"""A server that answers with malformed bodies (fault injection: no real server does this on purpose).

It speaks just enough of the OpenAI routes to pass rag_eval's start-up check (``GET /v1/models``),
then answers ``/v1/embeddings`` with one embedding too few and ``/v1/rerank`` without ``results``.
"""

from __future__ import annotations

import json

from tests.servers.faulty import FaultyServer, vectors

MODEL = "broken-model"


class BrokenServer(FaultyServer):
    def __init__(self) -> None:
        super().__init__(model=MODEL, embed=lambda texts, n: vectors(texts[1:], lambda i: [0.1, 0.2]),
                         rerank=lambda docs, n: json.dumps({"scores": [0.5] * len(docs)}))
