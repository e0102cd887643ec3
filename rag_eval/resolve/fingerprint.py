"""A model's fingerprint: the settings that change what it outputs, declared once per role.

Like sentence-transformers' ``config_keys``, each role declares the list of its settings that change
its output; everything that names a model's outputs is derived from those lists:

* the experiment name (the result folder's ``experiment`` part, ``LoadedModel.variant``): :data:`VARIANT_KEYS`;
* a bi-encoder's embedding cache folder: :data:`ENCODER_KEYS` (+ :data:`API_ENCODER_KEYS`) and the
  prompts its encoder applies;
* a reranker's score cache folder: :data:`RERANKER_KEYS` (+ :data:`RERANKER_FORMAT_KEYS` for an LLM
  format, :data:`API_RERANKER_KEYS` for a served one);
* the model's part of a result record (the ``rag_eval`` block of a result file).

The cache folders are ``<output>/.cache/<kind>/<model>/<revision>/<digest>``, the digest a sha256 of the
settings as JSON: these keys are those of every earlier run (a ``torch`` backend is left out, as it was
before backends existed), so warm caches stay warm. tests/test_models.py pins them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag_eval.config import ModelConfig
from rag_eval.results.layout import cache_folder

#: the retrieval options that change a model's results, each as it appears in the experiment name (in this order);
#: an option at its default adds nothing
_VARIANT: dict[str, Callable[[Any], str | None]] = {
    "embed_dim": lambda v: f"dim{v}" if v else None,
    "output_dtype": lambda v: v or None,
    "search_backend": lambda v: v if v != "exact" else None,
    "backend": lambda v: v if v != "torch" else None,
    # "qint8" (torch's name): "int8" already names output_dtype int8
    "precision": lambda v: {"fp16": "fp16", "bf16": "bf16", "int8": "qint8"}.get(v),
}
VARIANT_KEYS = tuple(_VARIANT)

#: a bi-encoder's settings that change a vector (its embedding cache key; each vector's own key holds its prompt
#: and text). output_dtype is applied after the cache, so it is not one of them; truncation (embed_dim) is
ENCODER_KEYS = ("model_type", "pooling_mode", "prompt", "max_seq_length", "embed_dim", "precision", "model_kwargs",
                "config_kwargs", "backend")
#: a served bi-encoder's too: the server and the request settings (never the key)
API_ENCODER_KEYS = ("api_base", "model_name", "dimensions", "extra_body")
#: a reranker's settings that change a pair's score (its score cache key)
RERANKER_KEYS = ("max_seq_length", "prompt", "precision", "model_kwargs", "config_kwargs", "backend")
#: an LLM reranker format's too (any format but cross_encoder), beside the format itself
RERANKER_FORMAT_KEYS = ("instruction", "prompts")
#: a served reranker's too, as one list
API_RERANKER_KEYS = ("api_base", "model_name", "rerank_schema", "extra_body")


def experiment_name(cfg: ModelConfig) -> str:
    """The retrieval options that change a model's results, as a folder name part ("" for the defaults); from the
    config alone (a job's plan is made before the models load)."""
    parts = (_VARIANT[key](getattr(cfg, key)) for key in VARIANT_KEYS)
    return "_".join(p for p in parts if p)


def declared_settings(cfg: ModelConfig, keys: tuple[str, ...]) -> dict[str, Any]:
    """``keys`` of ``cfg`` as a cache key holds them: kwargs as sorted strings; the ``torch`` backend left out
    (absent before backends existed: older keys stay valid)."""
    out: dict[str, Any] = {}
    for key in keys:
        value = getattr(cfg, key)
        if key in ("model_kwargs", "config_kwargs"):
            value = {k: str(v) for k, v in sorted(value.items())}
        if key == "backend" and value == "torch":
            continue
        out[key] = value
    return out


def _digest(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Fingerprint:
    """What names a model's outputs: its config, name and revision, and what loading decided (the prompts its
    encoder applies, a reranker's format). :meth:`of` a loaded model; or built from a resolved model's identity
    before it loads (the dry run's cache look-up)."""

    config: ModelConfig
    name: str
    revision: str
    prompts: dict[str, str] | None = None  # the prompts the bi-encoder applies (its encoder's model_prompts)
    reranker_format: str | None = None  # a reranker's format as decided (rag_eval/resolve/rerankers)
    source: str | None = None  # local | huggingface | modelscope | mteb
    embedding_dim: int | None = None  # the dimensions of its embeddings, where known (the report's index size)
    parts: tuple[Fingerprint, ...] = field(default_factory=tuple)  # a hybrid's sub-models, in fusion order

    @classmethod
    def of(cls, model: Any) -> Fingerprint:
        """The fingerprint of a loaded model (rag_eval.resolve.loaded.LoadedModel)."""
        return cls(config=model.config, name=model.name, revision=model.revision,
                   prompts=getattr(model.encoder, "model_prompts", None), reranker_format=model.reranker_format,
                   source=model.resolved.source, embedding_dim=_embedding_dim(model),
                   parts=tuple(cls.of(p) for p in model.parts))

    @property
    def experiment(self) -> str:
        """The experiment name: the part of its result folders' names its retrieval options make."""
        return experiment_name(self.config)

    # ------------------------------------------------------------------ caches

    def embedding_settings(self) -> dict[str, Any]:
        """What a bi-encoder's embedding cache folder is keyed by."""
        cfg = self.config
        settings = {"model": self.name, "revision": self.revision, "prompts": self.prompts,
                    **declared_settings(cfg, ENCODER_KEYS)}
        if cfg.is_api:
            settings.update(declared_settings(cfg, API_ENCODER_KEYS))
        return settings

    def embedding_cache_dir(self, output_folder: Path) -> Path:
        """Where a bi-encoder's embeddings are cached: one folder per model and encoding settings."""
        return cache_folder(output_folder, "embeddings", self.name, self.revision, _digest(self.embedding_settings()))

    def score_settings(self) -> dict[str, Any]:
        """What a reranker's score cache folder is keyed by."""
        cfg = self.config
        llm_format = self.reranker_format not in (None, "cross_encoder")
        return {
            "model": self.name, "revision": self.revision, **declared_settings(cfg, RERANKER_KEYS),
            **({"format": self.reranker_format, **declared_settings(cfg, RERANKER_FORMAT_KEYS)} if llm_format else {}),
            "api": [getattr(cfg, k) for k in API_RERANKER_KEYS] if cfg.is_api else None,
        }

    def score_cache_dir(self, output_folder: Path) -> Path:
        """Where a reranker's pair scores are cached: one folder per reranker and scoring settings."""
        return cache_folder(output_folder, "rerank_scores", self.name, self.revision, _digest(self.score_settings()))

    # ------------------------------------------------------------------ the result record

    def identity_record(self) -> dict[str, Any]:
        """The model's name, source, revision and experiment, as a result record opens."""
        return {"model": self.name, "model_name_or_path": self.config.model_name_or_path, "model_source": self.source,
                "revision": self.revision,
                "variant": self.experiment}  # the options in its folder name (embed_dim, dtype, backend, precision)

    def settings_record(self) -> dict[str, Any]:
        """The settings a result record keeps: ``model_config``, and a retriever's ``retrieval`` options."""
        cfg = self.config
        out: dict[str, Any] = {"model_config": {
            "pooling_mode": cfg.pooling_mode,
            "max_seq_length": cfg.max_seq_length,
            "precision": cfg.precision or str(cfg.model_kwargs.get("torch_dtype", cfg.model_kwargs.get("dtype"))
                                              or "fp32"),
            "backend": cfg.backend,
            "prompt": cfg.prompt,
            "prompts": cfg.prompts,
            "model_kwargs": {k: str(v) for k, v in cfg.model_kwargs.items()},
            "encode_kwargs": cfg.encode_kwargs,
        }}
        if not cfg.is_cross_encoder:
            out["retrieval"] = {
                "variant": self.experiment, "embed_dim": cfg.embed_dim, "output_dtype": cfg.output_dtype,
                "embedding_dim": self.embedding_dim, "search_backend": cfg.search_backend,
                "model_type": cfg.model_type,
                **({"hybrid": self._hybrid_record()} if self.parts else {}),
                **({"bm25": cfg.model_kwargs} if cfg.model_type == "bm25" else {})}
        return out

    def api_record(self) -> dict[str, Any]:
        """A served model's ``api`` block of a result record (never the key); {} for another model."""
        cfg = self.config
        if not cfg.is_api:
            return {}
        return {"api": {"api_base": cfg.api_base, "model_name": cfg.model_name, "dimensions": cfg.dimensions,
                        "rerank_schema": cfg.rerank_schema if cfg.is_cross_encoder else None}}

    def _hybrid_record(self) -> dict[str, Any]:
        opts = self.config.hybrid
        return {**{k: opts[k] for k in ("fusion", "weights", "rrf_k", "sub_model_top_k")},
                "models": [{"model": p.name, "revision": p.revision, "variant": p.experiment} for p in self.parts]}


def _embedding_dim(model: Any) -> int | None:
    """The dimensions of the model's embeddings (``embed_dim`` when truncated; else sentence-transformers' own);
    None when the encoder does not say (an API, BM25, a hybrid, a cross-encoder)."""
    if model.config.embed_dim:
        return model.config.embed_dim
    st = getattr(model.encoder, "model", None)
    for name in ("get_embedding_dimension", "get_sentence_embedding_dimension"):
        try:
            dim = getattr(st, name)()
        except Exception:  # noqa: BLE001 - not a sentence-transformers model: unknown
            continue
        if isinstance(dim, int):
            return dim
    return None
