"""Stage 2 as rag_eval runs it: the cross-encoder scores each task's pairs in length-sorted batches,
each (query, document) pair once, through an on-disk score cache.

The score cache keys a score by the pair's texts as the model receives them (prefixes included);
its folder is keyed by the reranker and every setting that changes a score (see
``Fingerprint.score_cache_dir``, resolve/fingerprint.py). It is a ``VectorStore`` (stages/vector_store.py:
atomic ``chunk-*.npy`` + ``chunk-*.json``, no pickle) holding one float per key. So a rerun, a second
stage-1 model over the same corpus, or a larger ``top_k`` only scores the pairs not seen before.
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
from rag_eval.stages.probes import PROBE_CHARS_PER_TOKEN
from rag_eval.stages.progress import progress
from rag_eval.stages.vector_store import VectorStore

logger = logging.getLogger(__name__)


class LengthSortedCrossEncoder:
    """mteb's ``CrossEncoderWrapper``, scoring all new pairs of a call in length-sorted batches.

    mteb hands ``CrossEncoder.predict`` one dataloader batch at a time, in data order, so long
    and short pairs share batches and most tokens are padding (measured: 80k vs 46k tokens,
    26 s vs 14 s on 160 Cranfield pairs). Here the pairs (with mteb's own query/passage
    prefixes) are gathered first, pairs already in the score cache are answered from it, and the
    rest are scored in exactly the batches one ``predict`` call would form, longest first, one call
    per batch, so the bar can count pairs and name the task and stage. A served reranker
    (``rag_eval.resolve.api_models.ApiReranker``) sends its own requests for the new pairs. Any other
    cross-encoder (a ``CrossEncoderProtocol`` without a sentence-transformers ``model``) is called as
    it is, its bar moving once, uncached.
    """

    def __init__(self, wrapper: Any, stage: str | None = None, cache: VectorStore | None = None,
                 region: Any = None):
        self.wrapper, self.stage = wrapper, stage
        self.region = region or contextlib.nullcontext  # model.precision's autocast region
        self.cache = cache if cache is not None else VectorStore(None)
        self.pairs_scored = 0  # pairs sent to the model (the rest came from the cache)
        self.instructions: dict[str, str | None] = {}  # task -> the instruction an LLM format applied
        self.ties: dict[str, dict[str, Any]] = {}  # task -> tie_stats of its last predict call

    @property
    def mteb_model_meta(self) -> Any:
        return self.wrapper.mteb_model_meta

    def _pairs(self, inputs1: Any, inputs2: Any) -> list[tuple[Any, Any]] | None:
        if hasattr(self.wrapper, "score_pairs"):  # a served reranker: it applies its own query prefix
            texts = ([t for b in inputs1 for t in b["text"]], [t for b in inputs2 for t in b["text"]])
        else:
            texts = _compat.cross_encoder_texts(self.wrapper, inputs1, inputs2)
        return None if texts is None else list(zip(*texts, strict=True))

    def predict(self, inputs1: Any, inputs2: Any, *, task_metadata: Any, hf_split: str, hf_subset: str,
                prompt_type: Any = None, **kwargs: Any) -> Any:
        show = kwargs.pop("show_progress_bar", None)
        total = len(getattr(inputs1, "dataset", ()) or ())
        pairs = self._pairs(inputs1, inputs2)
        batch_size = int(kwargs.pop("batch_size", None) or 32)
        with progress(total, task=task_metadata.name, stage=self.stage, step="rerank", show=show) as bar:
            if pairs is None:
                scores = self.wrapper.predict(inputs1, inputs2, task_metadata=task_metadata, hf_split=hf_split,
                                              hf_subset=hf_subset, prompt_type=prompt_type, show_progress_bar=False,
                                              batch_size=batch_size, **kwargs)
                bar.update(total)
                return scores
            instruction = None
            if hasattr(self.wrapper, "instruction_for"):  # an LLM format: the task's instruction, in its slot
                instruction = self.wrapper.instruction_for(task_metadata)
                self.instructions[task_metadata.name] = instruction
            keys = [_pair_key(q, d, instruction) for q, d in pairs]
            self.cache.load(keys)
            missing: dict[str, int] = {}
            for i, key in enumerate(keys):
                if key not in self.cache:
                    missing.setdefault(key, i)
            bar.update(total - len(missing))
            new: dict[str, float] = {}
            if missing:
                scores = self._score([pairs[i] for i in missing.values()], batch_size, bar, kwargs, instruction)
                self.cache.add(list(missing), scores.reshape(-1, 1))
                new = dict(zip(missing, scores.tolist(), strict=True))
                self.pairs_scored += len(missing)
            logger.debug("%s: %d pairs, %d scored, %d from the score cache", task_metadata.name, len(pairs),
                         len(missing), len(pairs) - len(missing))
            out = np.asarray([new[k] if k in new else self.cache[k][0] for k in keys], dtype=np.float32)
            self.ties[task_metadata.name] = tie_stats(out)
            return out

    def _score(self, pairs: list[tuple[Any, Any]], batch_size: int, bar: Any, kwargs: dict[str, Any],
               instruction: str | None = None) -> np.ndarray:
        """Scores of ``pairs`` (unique, none cached), in input order."""
        if hasattr(self.wrapper, "instruction_for"):
            with self.region():
                return np.asarray(self.wrapper.score_pairs(pairs, batch_size, on_batch=bar.update,
                                                           instruction=instruction), dtype=np.float32)
        if hasattr(self.wrapper, "score_pairs"):
            return np.asarray(self.wrapper.score_pairs(pairs, batch_size, on_batch=bar.update), dtype=np.float32)
        model = self.wrapper.model
        _warn_truncation(model, pairs)
        scores = np.empty(len(pairs), dtype=np.float32)
        for rows in batches(model, pairs, batch_size):
            with self.region():
                batch_scores = model.predict([pairs[i] for i in rows], batch_size=len(rows),
                                             show_progress_bar=False, **kwargs)
            scores[rows] = np.asarray(batch_scores, dtype=np.float32).reshape(len(rows))
            bar.update(len(rows))
        return scores

    def close(self) -> None:
        """Nothing to stop (the multi-process pool is the bi-encoder's); here for a uniform stage API."""


def _pair_key(query: Any, document: Any, instruction: str | None = None) -> str:
    text = f"{query}\0{document}" if instruction is None else f"{instruction}\0{query}\0{document}"
    return hashlib.sha256(text.encode()).hexdigest()


#: a task whose stage-2 scores have at most this share of distinct values is flagged as mostly tied
TIE_SHARE = 0.5


def tie_stats(scores: np.ndarray) -> dict[str, Any]:
    """How tied a task's scores are: ``constant`` (one value) or ``mostly_tied`` (few distinct values)."""
    distinct = int(np.unique(scores).size)
    n = int(scores.size)
    return {"pairs": n, "distinct_scores": distinct, "constant": n > 1 and distinct == 1,
            "mostly_tied": n > 1 and distinct <= max(1, int(n * TIE_SHARE))}


def _warn_truncation(model: Any, pairs: list[tuple[Any, Any]]) -> None:
    """Warn, with counts, when a sentence-transformers cross-encoder will cut pairs to its max_length."""
    tokenizer, limit = getattr(model, "tokenizer", None), getattr(model, "max_length", None)
    if tokenizer is None or not limit or not pairs or not all(isinstance(t, str) for p in pairs for t in p):
        return
    budget = limit * PROBE_CHARS_PER_TOKEN  # bounded, as the bi-encoder's probe: a 10 MB text costs a long one's
    try:
        ids = tokenizer([q[:budget] for q, _ in pairs], [d[:budget] for _, d in pairs], truncation=False,
                        verbose=False)["input_ids"]
    except Exception:  # a processor that takes no text pairs: nothing to count
        return
    cut = sum(len(x) > limit for x in ids)
    if cut:
        logger.warning("%d of %d pairs are longer than the cross-encoder's max_seq_length %d tokens and were "
                       "truncated", cut, len(pairs), limit)


def note_scoring(extra: dict[str, Any], reranker: LengthSortedCrossEncoder, model: Any, task: Any) -> None:
    """Put the reranker's format, the instruction as applied and its scores' ties into ``extra``."""
    name = task.metadata.name
    block: dict[str, Any] = {"format": model.reranker_format or "cross_encoder"}
    if name in reranker.instructions:
        block["instruction"] = reranker.instructions[name]
    ties = reranker.ties.get(name)
    if ties is not None:
        block["ties"] = ties
        if ties["constant"] or ties["mostly_tied"]:
            logger.warning("%s: %s gave %d distinct scores to %d pairs (%s): its ranking is mteb's tie-break by "
                           "document id, not the reranker's", name, model.name, ties["distinct_scores"], ties["pairs"],
                           "constant" if ties["constant"] else "mostly tied")
    extra["reranker"] = block


def cached_cross_encoder(model: Any, output_folder: Path | None, stage: str | None) -> LengthSortedCrossEncoder:
    """The run's cross-encoder: pair scores cached under ``output_folder`` (None: in memory only)."""
    folder = model.fingerprint.score_cache_dir(output_folder) if output_folder is not None else None
    return LengthSortedCrossEncoder(model.encoder, stage, VectorStore(folder), region=model.region)
