"""Search models for stage 1: mteb's BM25 (``mteb/baseline-bm25s``) and mteb's ``HybridSearch``.

Both are mteb's own implementations; rag_eval only configures them and names their results:

* **BM25** (``model_type: bm25``): ``model_kwargs`` are mteb's BM25 options (``k1``, ``b``, ``delta``,
  ``method``, ``stopwords``, ``stemmer_language``, ``freq_threshold``) plus ``tokenizer``: ``auto``
  (mteb's rule from the task's language: characters for Chinese, stemmed words for English, ...),
  ``char`` (characters, as mteb's own Chinese tokenizer; with the ``zh`` stopwords unless given) or
  ``jieba`` (Chinese words from jieba; ``zh`` stopwords unless given).
* **Hybrid** (``model_type: hybrid``): ``hybrid.models`` (two or more bi-encoders / BM25), fused by
  mteb's ``HybridSearch`` (``fusion`` rrf | dbsf | rsf, ``weights``, ``rrf_k``, ``sub_model_top_k``).
  The stage builds it (:mod:`rag_eval.stages.first_stage`) so each dense part runs behind its own
  embedding cache: the same vectors as that model alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag_eval.config import ModelConfig
from rag_eval.config.schema import BM25_OPTIONS, BM25_TOKENIZERS
from rag_eval.errors import ConfigError, one_line
from rag_eval.resolve.hub import ResolvedModel
from rag_eval.resolve.loaded import LoadedModel

logger = logging.getLogger(__name__)

BM25_MODEL = "mteb/baseline-bm25s"


def char_tokens(text: str) -> list[str]:
    """Characters, NFKC-normalised and lower-cased, spaces dropped (mteb's own tokenizer for Chinese)."""
    return list(unicodedata.normalize("NFKC", text).lower().replace(" ", ""))


def jieba_tokens(text: str) -> list[str]:
    """Chinese words (jieba's precise mode), lower-cased, blanks dropped."""
    import jieba

    return [w for w in jieba.lcut(text.lower()) if w.strip()]


_TOKENIZERS: dict[str, Callable[[str], list[str]]] = {"char": char_tokens, "jieba": jieba_tokens}


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:10]


def bm25_name(cfg: ModelConfig) -> str:
    """A BM25 model's name in results: ``name``, else ``bm25s`` (mteb's language rule) or ``bm25s-<tokenizer>``."""
    tokenizer = cfg.model_kwargs.get("tokenizer", "auto") or "auto"
    return cfg.name or ("bm25s" if tokenizer == "auto" else f"bm25s-{tokenizer}")


def hybrid_name(cfg: ModelConfig, parts: list[tuple[str, str]]) -> str:
    """A hybrid's name in results: ``name``, else ``hybrid-<fusion>-<part>+<part>`` from its parts' (name, variant)."""
    names = [name.rsplit("/", 1)[-1] + (f"-{variant}" if variant else "") for name, variant in parts]
    return cfg.name or f"hybrid-{cfg.hybrid['fusion']}-{'+'.join(names)}"


def load_search_model(cfg: ModelConfig, load_model: Callable[[ModelConfig], Any]) -> Any:
    return _load_bm25(cfg) if cfg.model_type == "bm25" else _load_hybrid(cfg, load_model)


def _load_bm25(cfg: ModelConfig) -> Any:
    import mteb

    options = dict(cfg.model_kwargs)
    unknown = sorted(set(options) - BM25_OPTIONS)
    if unknown:
        raise ConfigError(f"model_kwargs.{unknown[0]} is not a BM25 option: use {', '.join(sorted(BM25_OPTIONS))}")
    tokenizer = options.pop("tokenizer", "auto") or "auto"
    if tokenizer not in BM25_TOKENIZERS:
        raise ConfigError(f"model_kwargs.tokenizer is {tokenizer!r}: use one of {', '.join(BM25_TOKENIZERS)}")
    kwargs = dict(options)
    if tokenizer != "auto":  # a tokenizer of our own turns off mteb's language rule: keep its Chinese stopwords
        kwargs["tokenizer"] = _TOKENIZERS[tokenizer]
        kwargs.setdefault("stopwords", "zh")
        if tokenizer == "jieba":
            import jieba

            jieba.setLogLevel(logging.WARNING)
    try:
        model = mteb.get_model(BM25_MODEL, **kwargs)
        import bm25s  # noqa: F401  (imported now, not inside the first index: its bars and log level follow verbosity)
        import bm25s.scoring  # noqa: F401
        import bm25s.tokenization  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"model_type bm25 needs mteb's bm25s extra ({one_line(exc)[:160]}): "
                          "pip install bm25s PyStemmer") from None
    settings = {**options, "tokenizer": tokenizer}
    name = bm25_name(cfg)
    revision = f"{model.mteb_model_meta.revision}-{_digest(settings)}"
    # a meta that names the settings (mteb would record the tokenizer function itself)
    model.mteb_model_meta = model.mteb_model_meta.model_copy(
        update={"name": name, "revision": revision, "experiment_kwargs": settings})
    resolved = ResolvedModel(model_id=BM25_MODEL, path=Path(), revision=revision, source="mteb")
    return LoadedModel(encoder=model, config=cfg, resolved=resolved, name=name, revision=revision)


def _load_hybrid(cfg: ModelConfig, load_model: Callable[[ModelConfig], Any]) -> Any:
    opts = cfg.hybrid
    parts = [load_model(sub) for sub in opts["models"]]
    name = hybrid_name(cfg, [(p.name, p.variant) for p in parts])
    settings = {k: opts[k] for k in ("fusion", "weights", "rrf_k", "sub_model_top_k")}
    settings["models"] = [[p.name, p.revision, p.variant] for p in parts]
    revision = f"hybrid-{_digest(settings)}"
    resolved = ResolvedModel(model_id="mteb.HybridSearch", path=Path(), revision=revision, source="mteb")
    return LoadedModel(encoder=None, config=cfg, resolved=resolved, name=name, revision=revision, parts=parts)


def hybrid_search(model: Any, parts: list[Any]) -> Any:
    """mteb's ``HybridSearch`` over the stage-1 encoders of a hybrid's parts, named as rag_eval files it."""
    import mteb
    from mteb.models.model_meta import ModelMeta

    opts = model.config.hybrid
    search = mteb.HybridSearch(parts, weights=opts["weights"], sub_model_top_k=opts["sub_model_top_k"],
                               fusion_strategy=opts["fusion"], rrf_k=opts["rrf_k"])
    search.mteb_model_meta = ModelMeta.create_empty(overwrites={
        "name": model.name, "revision": model.revision, "model_type": ["hybrid"],
        "experiment_kwargs": {k: opts[k] for k in ("fusion", "weights", "rrf_k", "sub_model_top_k")}})
    return search
