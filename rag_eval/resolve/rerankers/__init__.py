"""Reranker formats: how a reranker's pairs become model input and how a score is read.

``reranker_format`` is a closed choice (:class:`RerankerFormat`, declared with the config in
config/schema.py). ``cross_encoder`` is sentence-transformers' ``CrossEncoder`` (classifiers such as
bge-reranker-v2-m3, and conversions whose chat template carries the query/document roles); each LLM
format is one module with the hooks of :class:`rag_eval.resolve.rerankers.base.Format`, registered in
:data:`FORMATS`. ``auto`` is decided from the model folder before any model runs
(:func:`rag_eval.resolve.rerankers.detect.detect_format`).
"""

from __future__ import annotations

from rag_eval.config.schema import REFUSED_FORMATS as REFUSED
from rag_eval.config.schema import SUPPORTED_FORMATS as SUPPORTED
from rag_eval.config.schema import RerankerFormat
from rag_eval.resolve.rerankers import flag_llm, qwen3

__all__ = ["FORMATS", "REFUSED", "SUPPORTED", "RerankerFormat"]

#: the LLM formats rag_eval scores itself, by name
FORMATS = {f.name: f for f in (qwen3.FORMAT, flag_llm.FORMAT)}
