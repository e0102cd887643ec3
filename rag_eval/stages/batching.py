"""The order sentence-transformers batches inputs in, for both encoders.

sentence-transformers sorts one ``encode`` / ``predict`` call's inputs longest first (by its own
length measure) and, on unpadded (flattened) inputs, interleaves long and short ones. rag_eval
feeds its own batches, one call each, so that it can deduplicate, cache and show a labelled bar;
taking them in this order gives exactly the vectors (and scores) one big call would have given.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rag_eval import _compat


def batch_order(model: Any, items: list[Any]) -> np.ndarray:
    """Indices of ``items`` (texts, or text pairs) in the order ``model`` batches them in one call."""
    length = _compat.input_length(model)
    order = np.argsort([-length(item) for item in items])
    return _compat.interleave_if_flattened(model, order)


def batches(model: Any, items: list[Any], batch_size: int) -> list[list[int]]:
    """Row indices of ``items``, cut into the batches one call of ``batch_size`` would form."""
    order = batch_order(model, items)
    return [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]
