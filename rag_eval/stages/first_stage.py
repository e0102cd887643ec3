"""The stage-1 model as mteb runs it, for one-stage and two-stage alike.

* a bi-encoder: behind the embedding cache (each unique text encoded once, across runs); then, as
  configured, mteb's ``CompressionWrapper`` (``output_dtype``: int8 / binary / ...) and mteb's
  ``FaissSearchIndex`` (``search_backend: faiss``). The cache keeps float32 vectors, so one cache
  serves every dtype, and compression is calibrated per mteb call, as mteb does it.
* BM25: mteb's own search model, as it is.
* a hybrid: mteb's ``HybridSearch`` over the stage-1 encoders of its parts (so its dense parts reuse
  their own embedding caches).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag_eval.errors import ConfigError
from rag_eval.stages.embedding_cache import CachingEncoder, cached_encoder


@dataclass
class FirstStage:
    """What mteb evaluates (``run``), and the embedding caches behind it (for stats and closing)."""

    run: Any
    caches: list[CachingEncoder] = field(default_factory=list)

    @property
    def texts_encoded(self) -> int:
        return sum(c.texts_encoded for c in self.caches)

    def vocabulary_stats(self, task: str) -> dict[str, Any] | None:
        stats = [c.vocabulary_stats(task) for c in self.caches]
        return next((s for s in stats if s is not None), None)

    def close(self) -> None:
        for cache in self.caches:
            cache.close()


def first_stage(model: Any, cache_root: Path | None, stage: str) -> FirstStage:
    """The stage-1 model ``model`` (a LoadedModel) ready for ``mteb.evaluate``; caches under ``cache_root``
    (None: in memory only)."""
    if model.kind == "bm25":
        return FirstStage(run=model.encoder)
    if model.kind == "hybrid":
        from rag_eval.resolve.search_models import hybrid_search

        parts = [first_stage(p, cache_root, stage) for p in model.parts]
        return FirstStage(run=hybrid_search(model, [p.run for p in parts]),
                          caches=[c for p in parts for c in p.caches])
    cache = cached_encoder(model, cache_root, stage=stage)
    run: Any = cache
    cfg = model.config
    if cfg.output_dtype:
        from mteb.models import CompressionWrapper
        from mteb.types import OutputDType

        run = CompressionWrapper(run, OutputDType(cfg.output_dtype))
    if cfg.search_backend == "faiss":
        from mteb.models import SearchEncoderWrapper
        from mteb.models.search_encoder_index import FaissSearchIndex

        try:
            run = SearchEncoderWrapper(run, index_backend=FaissSearchIndex(run))
        except ImportError:
            raise ConfigError("search_backend faiss needs faiss: pip install faiss-cpu") from None
    return FirstStage(run=run, caches=[cache])
