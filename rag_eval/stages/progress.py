"""Progress bars for the long steps (encoding, reranking), labelled with task and stage.

mteb and sentence-transformers draw anonymous bars ("Batches", "Scoring pairs"); in a run over
thirty tasks and two stages the user cannot tell which one is moving. rag_eval turns theirs off
and draws one bar per call, e.g. ``T2Retrieval · stage1 · encode documents``.

``show_progress_bar`` (``encode_kwargs``) decides: true = always, false = never, null (the
default at verbosity 2) = only on a terminal, so logs and CI output stay clean.
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm.auto import tqdm


def progress(total: int, *, task: str, stage: str | None, step: str, show: bool | None) -> Any:
    """A tqdm bar over ``total`` items, described as ``<task> · <stage> · <step>``."""
    parts = [task, stage, step]
    return tqdm(
        total=total,
        desc=" · ".join(p for p in parts if p),
        unit="text" if step.startswith("encode") else "pair",
        disable=None if show is None else not show,
        file=sys.stderr,
        leave=True,  # a finished bar stays: the step, its count, time and rate
        dynamic_ncols=True,
    )


def prompt_step(prompt_type: Any) -> str:
    """``encode queries`` / ``encode documents`` / ``encode texts`` from mteb's PromptType."""
    value = getattr(prompt_type, "value", prompt_type)
    return {"query": "encode queries", "document": "encode documents"}.get(value, "encode texts")
