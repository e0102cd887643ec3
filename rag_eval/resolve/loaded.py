"""A model as the stages run it: its mteb encoder, config, where it came from, and its results' name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rag_eval.config import ModelConfig
from rag_eval.resolve.fingerprint import Fingerprint, experiment_name
from rag_eval.resolve.hub import ResolvedModel


@dataclass
class LoadedModel:
    """An encoder ready for mteb, with what results need to know about it."""

    encoder: Any  # mteb EncoderProtocol / CrossEncoderProtocol / SearchProtocol (BM25); None for a hybrid
    config: ModelConfig
    resolved: ResolvedModel
    name: str  # display name, as in result folders
    revision: str
    parts: list[LoadedModel] = field(default_factory=list)  # a hybrid's sub-models, in fusion order
    region: Any = None  # the context each encode / predict call runs in (resolve/precision.py); None: none
    reranker_format: str | None = None  # a reranker's format as decided (rag_eval/resolve/rerankers)

    @property
    def kind(self) -> str:
        """encoder | cross_encoder | bm25 | hybrid: how a stage runs the model."""
        if self.config.is_cross_encoder:
            return "cross_encoder"
        return self.config.model_type if self.config.is_search else "encoder"

    @property
    def variant(self) -> str:
        """The retrieval options that change its results, as a folder name part ("" for the defaults)."""
        return experiment_name(self.config)

    @property
    def fingerprint(self) -> Fingerprint:
        """What names its outputs: experiment name, cache folders, its part of a result record."""
        return Fingerprint.of(self)
