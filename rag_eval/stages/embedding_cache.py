"""The bi-encoder as rag_eval runs it: each unique text encoded once, cached on disk.

mteb's ``CachedEmbeddingWrapper`` rebuilds its dataloader from rows that mteb has already
formatted, so a corpus document's title is prepended a second time and the scores change. This
cache works on the texts exactly as the model receives them instead, and keys each vector by
(prompt type, resolved prompt, text); the folder it lives in is keyed by the model and every
setting that changes a vector (``Fingerprint.embedding_cache_dir``, resolve/fingerprint.py).

:class:`CachingEncoder` is deduplicate -> batch -> store: the vectors live in a
:class:`~rag_eval.stages.vector_store.VectorStore` (stages/vector_store.py, chunked ``.npy`` files), and
the tokenizer's truncation and vocabulary probes run beside it (stages/probes.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from rag_eval import _compat
from rag_eval.stages.batching import batches
from rag_eval.stages.probes import TextProbes
from rag_eval.stages.progress import progress, prompt_step
from rag_eval.stages.vector_store import VectorStore

logger = logging.getLogger(__name__)


class CachingEncoder:
    """An mteb encoder that encodes each unique text once and answers repeats from the cache.

    * Deduplication: a text repeated within a call (a passage shared by queries, a sentence in
      several pairs), across tasks, stages or runs is encoded once; ``texts_encoded`` counts
      the texts sent to the model.
    * Batches: the new texts are encoded longest first, in exactly the batches
      sentence-transformers would form in one ``encode`` call (``stages/batching.py``), one call
      per batch. Vectors are therefore bit-identical to mteb's own for a call without
      repeats; a repeat dropped from a call changes the batch neighbours of the texts around
      it (float noise ~1e-7, which only threshold metrics over exact ties can notice).
    * Devices: ``device: [cuda:0, cuda:1]`` (a list) encodes through sentence-transformers' own
      multi-process pool, started once per run and stopped by :meth:`close`.
    * Progress: one bar per call, named ``<task> · <stage> · encode queries|documents|texts``.

    ``folder=None`` keeps the vectors in memory only (``cache_embeddings: false``).
    """

    def __init__(self, encoder: Any, folder: Path | None, stage: str | None = None,
                 devices: list[str] | None = None, region: Any = None):
        self.encoder = encoder
        self.region = region or contextlib.nullcontext  # model.precision's autocast region (resolve/precision.py)
        self.cache = VectorStore(folder)
        self.stage = stage
        self.devices = list(devices) if devices else None
        self._pool: dict[str, Any] | None = None
        self._meta: Any = None
        self.texts_encoded = 0
        self.probes = TextProbes(encoder)  # truncation and vocabulary (stages/probes.py)

    @property
    def mteb_model_meta(self) -> Any:
        return self._meta if self._meta is not None else self.encoder.mteb_model_meta

    @mteb_model_meta.setter
    def mteb_model_meta(self, meta: Any) -> None:  # mteb's CompressionWrapper records its dtype here
        self._meta = meta

    def similarity(self, a: Any, b: Any) -> Any:
        return self.encoder.similarity(a, b)

    def similarity_pairwise(self, a: Any, b: Any) -> Any:
        return self.encoder.similarity_pairwise(a, b)

    @property
    def truncated(self) -> int:
        """Texts longer than the model's max_seq_length, over the run."""
        return self.probes.truncated

    def vocabulary_stats(self, task: str) -> dict[str, Any] | None:
        """``{"unk_rate", "tokens_probed"}`` of the texts this encoder saw for ``task`` (None: not probed)."""
        return self.probes.vocabulary_stats(task)

    def _prompt(self, task_metadata: Any, prompt_type: Any) -> str:
        prompts = getattr(self.encoder, "model_prompts", None) or {}
        name = _compat.prompt_name(prompts, task_metadata, prompt_type)
        return prompts.get(name, "") if name else ""

    def encode(self, inputs: Any, *, task_metadata: Any, hf_split: str, hf_subset: str,
               prompt_type: Any = None, **kwargs: Any) -> np.ndarray:
        texts = [text for batch in inputs for text in batch["text"]]
        self.probes.vocabulary(task_metadata.name, texts)
        prompt = self._prompt(task_metadata, prompt_type)
        keys = [text_key(prompt_type, prompt, t) for t in texts]
        self.cache.load(keys)  # the hits' chunks, before deciding what is missing (a corrupt one is dropped)
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in self.cache:
                missing.setdefault(key, text)
        new: np.ndarray | None = None
        if missing:
            bounded = self.probes.bound(task_metadata.name, list(missing.values()))
            show = kwargs.pop("show_progress_bar", None)
            call = {"task_metadata": task_metadata, "hf_split": hf_split, "hf_subset": hf_subset,
                    "prompt_type": prompt_type, **kwargs}
            with progress(len(missing), task=task_metadata.name, stage=self.stage, step=prompt_step(prompt_type),
                          show=show) as bar:
                new = self._encode_new(bounded, call, bar)
            self._store(task_metadata.name, list(missing), new)
            self.texts_encoded += len(missing)
        logger.debug("%s: %d texts, %d encoded, %d from cache", task_metadata.name, len(texts), len(missing),
                     len(texts) - len(missing))
        return self._answer(keys, list(missing), new)

    def _store(self, task: str, keys: list[str], vectors: np.ndarray) -> None:
        """Cache the new vectors, except any holding NaN / Infinity: never kept, so a rerun encodes them again
        (a served model's answers are refused before they get here; this guards every encoder)."""
        finite = np.isfinite(vectors).all(axis=1) if vectors.ndim == 2 else np.ones(len(keys), dtype=bool)
        if not finite.all():
            logger.warning("%s: %d of %d new vectors hold NaN or Infinity: they are not cached", task,
                           int((~finite).sum()), len(keys))
            keys, vectors = [k for k, ok in zip(keys, finite, strict=True) if ok], vectors[finite]
        if keys:
            self.cache.add(keys, vectors)

    def _answer(self, keys: list[str], new_keys: list[str], new: np.ndarray | None) -> np.ndarray:
        """The vectors of ``keys`` in order: the new ones from ``new`` (rows in ``new_keys`` order), the rest
        from the cache. A call whose texts were all new and unique gets ``new`` itself, which the cache
        does not hold (it is on disk): no second copy of a cold corpus chunk."""
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        if new is not None and self.cache.folder is not None and new_keys == keys:
            return new
        row_of = {k: j for j, k in enumerate(new_keys)} if new is not None else {}
        first = new[0] if new is not None else self.cache[keys[0]]
        out = np.empty((len(keys), first.shape[0]), dtype=np.float32)
        for i, key in enumerate(keys):
            j = row_of.get(key)
            out[i] = new[j] if j is not None else self.cache[key]
        return out

    def _encode_new(self, texts: list[str], call: dict[str, Any], bar: Any) -> np.ndarray:
        """Encode ``texts`` (unique, none cached) through the wrapped mteb encoder; rows in input order."""
        batch_size = int(call.get("batch_size") or 32)
        if getattr(self.encoder, "batches_itself", False):  # a served model: its own requests, in order
            vecs = self.encoder.encode(_loader(texts), on_batch=bar.update, show_progress_bar=False, **call)
            return _as_numpy(vecs)
        with self.region():
            return self._encode_batches(texts, call, bar, batch_size)

    def _encode_batches(self, texts: list[str], call: dict[str, Any], bar: Any, batch_size: int) -> np.ndarray:
        if self.devices:
            # the pool splits each call over its workers; a few batches per worker per call
            # keeps every device busy and the progress bar moving
            call = {**call, "pool": self._start_pool(), "chunk_size": batch_size * 4}
            step = batch_size * 4 * len(self.devices)
            rows_of = [list(range(i, min(i + step, len(texts)))) for i in range(0, len(texts), step)]
        else:
            rows_of = batches(getattr(self.encoder, "model", None), texts, batch_size)
        out: np.ndarray | None = None
        for rows in rows_of:
            vecs = _as_numpy(self.encoder.encode(_loader([texts[i] for i in rows]), show_progress_bar=False, **call))
            if out is None:
                out = np.empty((len(texts), vecs.shape[1]), dtype=np.float32)
            out[rows] = vecs
            bar.update(len(rows))
        return out

    def _start_pool(self) -> dict[str, Any]:
        if self._pool is None:
            model = self.encoder.model
            logger.info("encoding on %s (sentence-transformers multi-process pool)", ", ".join(self.devices))
            self._pool = model.start_multi_process_pool(self.devices)
        return self._pool

    def close(self) -> None:
        """Stop the multi-process pool, if one was started."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            self.encoder.model.stop_multi_process_pool(pool)


def _loader(texts: list[str]) -> Any:
    """One batch as the DataLoader mteb's encoders take (the texts are already formatted by mteb)."""
    from datasets import Dataset
    from torch.utils.data import DataLoader

    return DataLoader(Dataset.from_dict({"text": texts}), batch_size=max(len(texts), 1))


def _as_numpy(vectors: Any) -> np.ndarray:
    if hasattr(vectors, "detach"):
        vectors = vectors.detach().float().cpu().numpy()
    return np.asarray(vectors, dtype=np.float32)


def text_key(prompt_type: Any, prompt: str, text: str) -> str:
    """A vector's key in the cache: its prompt type, the prompt text it got, and the text."""
    head = f"{getattr(prompt_type, 'value', prompt_type)}\0{prompt}\0"
    return hashlib.sha256((head + text).encode("utf-8")).hexdigest()


def cached_encoder(model: Any, output_folder: Path | None, stage: str | None = None) -> CachingEncoder:
    """The run's bi-encoder: on-disk cache under ``output_folder`` (None: in memory only)."""
    folder = model.fingerprint.embedding_cache_dir(output_folder) if output_folder is not None else None
    device = model.config.device
    return CachingEncoder(model.encoder, folder, stage=stage, devices=device if isinstance(device, list) else None,
                          region=model.region)
