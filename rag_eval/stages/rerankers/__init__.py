"""Reranker formats: how a reranker's pairs become model input and how a score is read.

``reranker_format`` is a closed choice (:class:`RerankerFormat`). ``cross_encoder`` is
sentence-transformers' ``CrossEncoder`` (classifiers such as bge-reranker-v2-m3, and conversions whose
chat template carries the query/document roles); each LLM format is one module with the hooks of
:class:`rag_eval.stages.rerankers.base.Format`, registered in :data:`FORMATS`. ``auto`` is decided from
the model folder before any model runs (:func:`rag_eval.stages.rerankers.detect.detect_format`).
"""

from __future__ import annotations

from enum import Enum

from rag_eval.stages.rerankers import flag_llm, qwen3


class RerankerFormat(str, Enum):
    auto = "auto"
    cross_encoder = "cross_encoder"
    qwen3 = "qwen3"
    flag_llm = "flag_llm"
    flag_layerwise = "flag_layerwise"


#: the LLM formats rag_eval scores itself, by name
FORMATS = {f.name: f for f in (qwen3.FORMAT, flag_llm.FORMAT)}
#: formats named but refused up front, and why
REFUSED = {
    "flag_layerwise": "bge-reranker-v2-minicpm-layerwise runs its own modelling code (LayerWiseMiniCPMForCausalLM, "
                      "trust_remote_code) whose per-layer heads rag_eval cannot check offline: it is not supported",
}
#: the formats a user can name for a folder auto cannot decide
SUPPORTED = ", ".join(f.value for f in RerankerFormat if f.value not in REFUSED and f.value != "auto")
