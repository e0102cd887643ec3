"""Models served behind an HTTP API: an OpenAI-compatible ``/embeddings`` bi-encoder and a ``/rerank``
cross-encoder, as mteb encoders (``encode``) and cross-encoders (``predict``).

mteb 2.26 ships ``OpenAIAPIEncodeWrapper`` / ``OpenAIAPIRerankWrapper``; rag_eval has its own client
because those do not fit a served-model evaluation: they retry 5xx without any pause, check the
server without the API key (a server that needs one fails in the constructor), ignore their
``prompt_dict``, send vLLM's chat ``messages`` by default, and the reranker sends one HTTP request
per (query, document) pair. Here:

* **Batching**: ``encode_kwargs.batch_size`` texts per ``/embeddings`` request; the reranker sends one
  request per query with up to ``batch_size`` of its documents; ``concurrency`` requests in flight.
* **Retries**: timeouts, connection errors (a body cut mid-way included), HTTP 429 and 5xx are retried
  ``max_retries`` times with exponential backoff, or after the server's ``Retry-After`` (capped at
  ``RETRY_AFTER_CAP_S``); ``request_timeout`` seconds bound the whole request, its body included.
* **Validation**: every answer is checked before it is used or cached: embeddings are lists of finite
  numbers (no booleans), all of one width per model; rerank scores are finite numbers.
* **Errors**: an unreachable server, HTTP 401/403, a model the server does not serve, any other 4xx
  and a malformed response each raise one :class:`ApiError` line naming the endpoint. They stop the
  run (as bad input does); tasks already finished stay on disk.
* **Schemas** (``rerank_schema``): ``cohere`` (Cohere, Jina, vLLM, infinity, EvalScope:
  ``{model, query, documents, top_n}`` -> ``results[].index / relevance_score``) or ``tei``
  (Hugging Face text-embeddings-inference: ``{query, texts}`` -> ``[{index, score}]``).
  ``extra_body`` is merged into every request (e.g. ``{raw_scores: true}`` for TEI / infinity logits).
* **Keys**: ``api_key`` from the config, else ``RAG_EVAL_API_KEY`` / ``OPENAI_API_KEY``; sent as a
  Bearer header, never logged or written into results.

Prompts are applied here (the server applies none): mteb's prompt keys, as for a local model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from rag_eval import _compat
from rag_eval.config.schema import RERANK_SCHEMAS
from rag_eval.errors import ConfigError, one_line, register_secret

logger = logging.getLogger(__name__)

KEY_ENV_VARS = ("RAG_EVAL_API_KEY", "OPENAI_API_KEY")
_RETRY_STATUS = {408, 409, 429}
_BACKOFF_S = 0.5
RETRY_AFTER_CAP_S = 30.0  # a server's Retry-After is honoured up to this many seconds per wait


#: EvalScope's APIReranker rule, said in errors about the URL it builds
RERANK_URL_RULE = ("api_base itself when it ends in /rerank or /reranks, else api_base + /reranks on "
                   "dashscope.aliyuncs.com and api_base + /rerank elsewhere")


def rerank_url(api_base: str) -> str:
    """The URL a reranker posts to, by EvalScope's rule (:data:`RERANK_URL_RULE`)."""
    base = api_base.rstrip("/")
    if base.endswith(("/rerank", "/reranks")):
        return base
    return f"{base}/reranks" if "dashscope.aliyuncs.com" in base else f"{base}/rerank"


class ApiError(ConfigError):
    """A served model could not be used (unreachable, refused, wrong model, malformed answer)."""


def api_key_from(configured: str | None) -> str | None:
    """The key to send: the configured one, else the first set of ``KEY_ENV_VARS``."""
    key = configured or next((os.environ[v] for v in KEY_ENV_VARS if os.environ.get(v)), None)
    register_secret(key)  # redacted from every message, record and log line from now on
    return key


def api_revision(api_base: str, model_name: str, **settings: Any) -> str:
    """The results' revision of a served model: which server and settings produced it."""
    text = "\0".join([api_base.rstrip("/"), model_name, *(f"{k}={v}" for k, v in sorted(settings.items()))])
    return "api-" + hashlib.sha256(text.encode()).hexdigest()[:10]


class ApiClient:
    """JSON over HTTP to one server, with retries, backoff, a timeout and one-line errors."""

    def __init__(self, api_base: str, api_key: str | None, *, timeout: float = 60.0, max_retries: int = 3):
        import requests

        self.api_base = api_base.rstrip("/")
        self.timeout, self.max_retries = timeout, max_retries
        self.session = requests.Session()
        self.session.headers["Content-Type"] = "application/json"
        if api_key:
            self.session.headers["Authorization"] = f"Bearer {api_key}"
        self.requests_sent = 0  # every POST, retries included (a warm rerun sends none)

    def url(self, path: str) -> str:
        return f"{self.api_base}/{path.lstrip('/')}"

    def post(self, path: str, payload: dict[str, Any]) -> Any:
        return self.send("POST", self.url(path), payload)

    def send(self, method: str, url: str, payload: dict[str, Any] | None = None,
              absent: tuple[int, ...] = ()) -> Any:
        """The JSON answer; None for a status in ``absent`` (a route the server does not have)."""
        import requests

        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            wait = _BACKOFF_S * 2 ** attempt
            try:
                if method == "POST":
                    self.requests_sent += 1
                status, text, retry_after = self._request(method, url, payload)
            except requests.Timeout:
                if last:
                    raise ApiError(f"{url} did not answer within request_timeout={self.timeout:g} s "
                                   f"({self.max_retries + 1} tries): raise model.request_timeout or check the "
                                   "server") from None
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                if last:
                    raise ApiError(f"cannot reach {url} ({_reason(exc)}): check model.api_base and that the "
                                   "server is running") from None
            else:
                if status in absent:
                    return None
                if status < 400:
                    try:
                        return json.loads(text)
                    except ValueError:
                        raise ApiError(f"malformed response from {url}: not JSON ({one_line(text, 200)!r})") from None
                if status not in _RETRY_STATUS and status < 500 or last:
                    raise _http_error(url, status, text, payload)
                if retry_after is not None:  # the server says when: honoured, within RETRY_AFTER_CAP_S
                    wait = max(wait, min(retry_after, RETRY_AFTER_CAP_S))
            time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _request(self, method: str, url: str, payload: dict[str, Any] | None) -> tuple[int, str, float | None]:
        """One request, its body read whole within ``timeout`` seconds from the start (a body that drips
        slower is cut at the deadline: requests' own timeout bounds each read, not the whole answer)."""
        import requests

        deadline = time.monotonic() + self.timeout
        response = self.session.request(method, url, json=payload, timeout=self.timeout, stream=True)
        timer = threading.Timer(max(0.0, deadline - time.monotonic()), _cut, (response,))
        timer.daemon = True
        timer.start()
        try:
            content = response.content
        except (requests.RequestException, OSError, AttributeError, ValueError) as exc:
            if time.monotonic() >= deadline:
                raise requests.Timeout(f"the answer took over {self.timeout:g} s") from None
            if isinstance(exc, requests.RequestException):
                raise
            raise requests.ConnectionError(str(exc)) from None
        finally:
            timer.cancel()
            response.close()
        if time.monotonic() >= deadline:
            raise requests.Timeout(f"the answer took over {self.timeout:g} s")
        text = content.decode(response.encoding or "utf-8", errors="replace")
        return response.status_code, text, _retry_after(response.headers.get("Retry-After"))

    def served_models(self) -> list[str] | None:
        """The model ids ``GET <api_base>/models`` lists (None when the server has no such route)."""
        # TEI and some gateways have no /models: then the first request tells instead
        answer = self.send("GET", self.url("models"), absent=(404, 405))
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list):
            return None
        return [str(m.get("id")) for m in data if isinstance(m, dict) and m.get("id") is not None]

    def check_route(self, url: str, where: str, built_from: str) -> None:
        """Fail at load time (one line) when the server has no route ``url`` (HTTP 404 to a GET; a route
        that only takes POST answers 405, which passes). Sends no POST, so it costs no model call."""
        import requests

        try:
            status = self.session.get(url, timeout=self.timeout).status_code
        except requests.RequestException as exc:
            raise ApiError(f"cannot reach {url} ({_reason(exc)}): check {where}.api_base and that the server is "
                           "running") from None
        if status == 404:
            raise ApiError(f"HTTP 404 from {url}: no such route; this URL was built from {where}.api_base "
                           f"{built_from!r} ({RERANK_URL_RULE}): fix {where}.api_base")

    def check_model(self, model_name: str, where: str) -> None:
        """Fail at load time (one line) when the server is down, refuses the key or lacks the model."""
        served = self.served_models()
        if served is not None and served and model_name not in served:
            raise ApiError(f"{where}.model_name '{model_name}' is not served at {self.url('models')} "
                           f"(it serves: {', '.join(served[:10])}): fix model_name")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A JSON number: ``true`` / ``false`` are not (Python's bool is an int)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_numbers(values: list[Any], url: str, where: str) -> None:
    bad = next((v for v in values if not _is_number(v)), None)
    if bad is not None or any(isinstance(v, bool) for v in values):
        raise ApiError(f"malformed response from {url}: {where} holds {json.dumps(bad)}, not a number; nothing "
                       "of this answer was cached: fix the server and rerun")


def _check_finite(values: np.ndarray, url: str, what: str) -> None:
    """Refuse NaN / Infinity (or a number beyond float32) before the answer reaches any cache."""
    bad = ~np.isfinite(values)
    if bad.any():
        first = values[bad].flat[0]
        raise ApiError(f"malformed response from {url}: non-finite {what} values ({int(bad.sum())}, the first "
                       f"{first}); nothing of this answer was cached: fix the server and rerun")


def _cut(response: Any) -> None:
    """Shut the socket under ``response`` (from the deadline's timer): a blocked read returns at once."""
    sock = getattr(getattr(response.raw, "_connection", None), "sock", None)
    try:
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds, or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


def _reason(exc: BaseException) -> str:
    text = one_line(str(exc))
    for marker in ("Connection refused", "Name or service not known", "No route to host", "timed out"):
        if marker in text:
            return marker
    return one_line(text, 120)


def _http_error(url: str, status: int, body: str, payload: dict[str, Any] | None) -> ApiError:
    detail = one_line(str(body), 200)
    if status in (401, 403):
        return ApiError(f"HTTP {status} from {url} ({detail}): the server refused the API key: set model.api_key "
                        f"or one of {', '.join(KEY_ENV_VARS)}")
    model = (payload or {}).get("model")
    if model and status in (400, 404, 422) and ("model" in body.lower()):
        return ApiError(f"HTTP {status} from {url} ({detail}): is model_name '{model}' served there?")
    return ApiError(f"HTTP {status} from {url} ({detail})")


def _in_parallel(calls: list[Callable[[], Any]], concurrency: int) -> list[Any]:
    """Run ``calls`` with up to ``concurrency`` in flight; results in call order."""
    if concurrency <= 1 or len(calls) <= 1:
        return [call() for call in calls]
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(lambda call: call(), calls))


def _texts(inputs: Any) -> list[str]:
    return [text for batch in inputs for text in batch["text"]]


class ApiEncoder:
    """An OpenAI-compatible ``/embeddings`` endpoint as an mteb encoder."""

    #: the embedding cache sends all of a call's new texts at once: this encoder batches itself
    batches_itself = True

    def __init__(self, client: ApiClient, model_name: str, *, dimensions: int | None = None,
                 model_prompts: dict[str, str] | None = None, max_chars: int | None = None,
                 extra_body: dict[str, Any] | None = None, concurrency: int = 1, meta: Any = None):
        self.client, self.model_name, self.dimensions = client, model_name, dimensions
        self.model_prompts = model_prompts
        self.max_chars, self.extra_body, self.concurrency = max_chars, dict(extra_body or {}), concurrency
        self.mteb_model_meta = meta
        self.width: int | None = None  # of the first answer: every later one must match
        self._lock = threading.Lock()

    def prompt_for(self, task_metadata: Any, prompt_type: Any) -> str:
        prompts = self.model_prompts or {}
        name = _compat.prompt_name(prompts, task_metadata, prompt_type) if prompts else None
        return prompts.get(name, "") if name else ""

    def encode(self, inputs: Any, *, task_metadata: Any, hf_split: str = "", hf_subset: str = "",
               prompt_type: Any = None, batch_size: int = 32, on_batch: Callable[[int], Any] | None = None,
               **kwargs: Any) -> np.ndarray:
        prompt = self.prompt_for(task_metadata, prompt_type)
        texts = [self._clip(prompt + t) for t in _texts(inputs)]
        size = max(1, int(batch_size or 32))
        chunks = [texts[i:i + size] for i in range(0, len(texts), size)]

        def request(chunk: list[str]) -> np.ndarray:
            vectors = self._embed(chunk)
            if on_batch is not None:
                on_batch(len(chunk))
            return vectors

        parts = _in_parallel([lambda c=c: request(c) for c in chunks], self.concurrency)
        return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)

    def _clip(self, text: str) -> str:
        return text[: self.max_chars] if self.max_chars else text

    def _embed(self, texts: list[str]) -> np.ndarray:
        payload: dict[str, Any] = {"model": self.model_name, "input": texts, "encoding_format": "float",
                                   **self.extra_body}
        if self.dimensions:
            payload["dimensions"] = self.dimensions
        answer = self.client.post("embeddings", payload)
        url = self.client.url("embeddings")
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list) or len(data) != len(texts):
            got = f"{len(data)} items" if isinstance(data, list) else one_line(repr(answer), 120)
            raise ApiError(f"malformed response from {url}: expected data[] with {len(texts)} embeddings, got {got}")
        rows: list[Any] = [None] * len(texts)
        for pos, item in enumerate(data):
            vector = item.get("embedding") if isinstance(item, dict) else None
            index = item.get("index", pos) if isinstance(item, dict) else pos
            if not isinstance(vector, list) or not _is_int(index) or not 0 <= index < len(texts):
                raise ApiError(f"malformed response from {url}: data[{pos}] has no embedding list / valid index")
            _check_numbers(vector, url, f"data[{pos}].embedding")
            rows[index] = vector
        try:
            vectors = np.asarray(rows, dtype=np.float32)
        except (TypeError, ValueError):
            raise ApiError(f"malformed response from {url}: embeddings of different lengths") from None
        if vectors.ndim != 2:
            raise ApiError(f"malformed response from {url}: embeddings are not a list of vectors")
        _check_finite(vectors, url, "embedding")
        with self._lock:  # one width per model, across requests (and threads)
            self.width = self.width or vectors.shape[1]
        if vectors.shape[1] != self.width:
            raise ApiError(f"malformed response from {url}: embeddings of width {vectors.shape[1]} after earlier "
                           f"ones of width {self.width}: a model must answer one width; nothing of this answer "
                           "was cached: fix the server (or set model.dimensions) and rerun")
        return vectors

    def similarity(self, a: Any, b: Any) -> Any:
        from mteb.similarity_functions import cos_sim

        return cos_sim(a, b)

    def similarity_pairwise(self, a: Any, b: Any) -> Any:
        from mteb.similarity_functions import pairwise_cos_sim

        return pairwise_cos_sim(a, b)


class ApiReranker:
    """A ``/rerank`` endpoint as an mteb cross-encoder: one request per query and its documents."""

    batches_itself = True

    def __init__(self, client: ApiClient, model_name: str, *, schema: str = "cohere", query_prefix: str = "",
                 max_chars: int | None = None, extra_body: dict[str, Any] | None = None, concurrency: int = 1,
                 meta: Any = None):
        if schema not in RERANK_SCHEMAS:
            raise ConfigError(f"rerank_schema is {schema!r}: use one of {', '.join(RERANK_SCHEMAS)}")
        self.client, self.model_name, self.schema = client, model_name, schema
        self.query_prefix, self.max_chars = query_prefix, max_chars
        self.extra_body, self.concurrency = dict(extra_body or {}), concurrency
        self.mteb_model_meta = meta

    def predict(self, inputs1: Any, inputs2: Any, *, task_metadata: Any = None, hf_split: str = "",
                hf_subset: str = "", prompt_type: Any = None, batch_size: int = 32,
                on_batch: Callable[[int], Any] | None = None, **kwargs: Any) -> np.ndarray:
        return self.score_pairs(list(zip(_texts(inputs1), _texts(inputs2), strict=True)), batch_size, on_batch)

    def score_pairs(self, pairs: list[tuple[str, str]], batch_size: int = 32,
                    on_batch: Callable[[int], Any] | None = None) -> np.ndarray:
        """Scores of (query, document) pairs, in input order; pairs are grouped by query."""
        by_query: dict[str, list[int]] = {}
        for i, (query, _) in enumerate(pairs):
            by_query.setdefault(query, []).append(i)
        size = max(1, int(batch_size or 32))
        jobs = [(query, rows[i:i + size]) for query, rows in by_query.items() for i in range(0, len(rows), size)]
        scores = np.zeros(len(pairs), dtype=np.float32)

        def request(query: str, rows: list[int]) -> None:
            got = self._rerank(self._clip(self.query_prefix + query), [self._clip(pairs[i][1]) for i in rows])
            scores[rows] = got
            if on_batch is not None:
                on_batch(len(rows))

        _in_parallel([lambda q=q, r=r: request(q, r) for q, r in jobs], self.concurrency)
        return scores

    def _clip(self, text: str) -> str:
        return text[: self.max_chars] if self.max_chars else text

    def _rerank(self, query: str, documents: list[str]) -> np.ndarray:
        if self.schema == "tei":
            payload: dict[str, Any] = {"query": query, "texts": documents, **self.extra_body}
        else:
            payload = {"model": self.model_name, "query": query, "documents": documents,
                       "top_n": len(documents), "return_documents": False, **self.extra_body}
        url = rerank_url(self.client.api_base)
        answer = self.client.send("POST", url, payload)
        results = answer if self.schema == "tei" else (answer.get("results") if isinstance(answer, dict) else None)
        if not isinstance(results, list):
            expected = "a list of {index, score}" if self.schema == "tei" else "results[]"
            raise ApiError(f"malformed response from {url}: expected {expected} ({self.schema} schema), "
                           f"got {one_line(repr(answer), 120)}")
        out = np.full(len(documents), np.nan, dtype=np.float32)
        for pos, item in enumerate(results):
            if not isinstance(item, dict):
                raise ApiError(f"malformed response from {url}: result {pos} is not an object")
            index = item.get("index", pos)
            score = item.get("relevance_score", item.get("score"))
            if not _is_int(index) or not 0 <= index < len(documents) or not _is_number(score):
                raise ApiError(f"malformed response from {url}: result {pos} has no valid index / relevance_score "
                               f"(got {one_line(json.dumps(item), 80)}); nothing of this answer was cached: fix the "
                               "server and rerun")
            _check_finite(np.asarray([score], dtype=np.float32), url, "relevance_score")
            out[index] = score
        if np.isnan(out).any():
            raise ApiError(f"malformed response from {url}: {int(np.isnan(out).sum())} of {len(documents)} "
                           "documents got no score")
        return out
