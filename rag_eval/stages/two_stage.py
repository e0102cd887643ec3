"""Two-stage evaluation: a bi-encoder retrieves each query's top_k, a cross-encoder reranks them.

This is mteb's own retrieve-then-rerank flow, run for every task in one pass:

* Retrieval: stage 1 = ``mteb.evaluate`` of the bi-encoder with a ``prediction_folder``;
  ``task.convert_to_reranking(predictions, top_k)`` turns the ranked lists into candidate
  lists; stage 2 = ``mteb.evaluate`` of the cross-encoder on exactly those candidates.
  Both stages are scored with the same metrics.
* Reranking: both models score the task's own candidate lists (top_ranked).
* Every other task type: the bi-encoder once (stage 1 only).

The bi-encoder runs behind an on-disk embedding cache (``embedding_cache``: numpy arrays and
JSON keys, nothing pickled), so a rerun reuses every embedding it already has; stage 2 never
calls the bi-encoder.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from rag_eval.config import EvalConfig
from rag_eval.resolve.models import LoadedModel, safe_path_part
from rag_eval.results import TaskOutcome, result_path, write_model_meta
from rag_eval.stages.embedding_cache import cached_encoder
from rag_eval.stages.one_stage import (
    cached_outcome,
    evaluate_task,
    new_outcome,
    prepare_task,
    record,
    result_extra,
)
from rag_eval.stages.reranking import LengthSortedCrossEncoder

logger = logging.getLogger(__name__)

STAGE1, STAGE2 = "stage1", "stage2"


def stage2_path(output_folder: Path, bi: LoadedModel, ce: LoadedModel, task: str, top_k: int) -> Path:
    """``stage2/<reranker>/<revision>/experiments/<stage-1 model>_<revision>_top<k>/<Task>.json``.

    mteb's experiments layout keeps the reranker's results per stage-1 model and top_k, so two
    stage-1 models reranked by one cross-encoder never overwrite each other.
    """
    base = result_path(output_folder, ce.name, ce.revision, task, STAGE2)
    experiment = safe_path_part(f"{bi.name}_{bi.revision}_top{top_k}")
    return base.parent / "experiments" / experiment / base.name


def run_two_stage(
    bi: LoadedModel,
    ce: LoadedModel,
    tasks: list[Any],
    ev: EvalConfig,
    output_folder: Path,
) -> list[TaskOutcome]:
    bi_encoder = cached_encoder(bi, output_folder, stage=STAGE1)  # always on disk: stage 2 never re-encodes
    write_model_meta(result_path(output_folder, bi.name, bi.revision, "x", STAGE1).parent,
                     bi.encoder.mteb_model_meta)
    write_model_meta(result_path(output_folder, ce.name, ce.revision, "x", STAGE2).parent,
                     ce.encoder.mteb_model_meta)
    stage1_of = {"stage1_model": bi.name, "stage1_revision": bi.revision}
    outcomes: list[TaskOutcome] = []
    try:
        for task in tasks:
            name, ttype = task.metadata.name, task.metadata.type
            first = new_outcome(bi, task, result_path(output_folder, bi.name, bi.revision, name, STAGE1), STAGE1)
            outcomes.append(first)
            second = None
            if ttype in ("Retrieval", "Reranking"):
                second = new_outcome(ce, task, stage2_path(output_folder, bi, ce, name, ev.top_k), STAGE2)
                outcomes.append(second)
            predictions = first.path.parent / "predictions"
            first_done = cached_outcome(first, ev) and (
                ttype != "Retrieval" or (predictions / task.prediction_file_name).is_file()
            )
            if first_done and (second is None or cached_outcome(second, ev)):
                continue
            first.status = "ok"  # a cached stage 1 without predictions runs again (from cached embeddings)
            try:
                sample = prepare_task(task, ev)
                first.sample = sample
                if not first_done:
                    keep = predictions if ttype == "Retrieval" else None
                    record(first, ev, lambda task=task, keep=keep: evaluate_task(
                        bi, task, ev, encoder=bi_encoder, prediction_folder=keep,
                    ), result_extra(bi, task, STAGE1))
                if second is None or first.status == "failed":
                    if second is not None:
                        second.status, second.error = "failed", "stage 1 failed"
                    continue
                second.sample = sample
                extra = result_extra(ce, task, STAGE2, **stage1_of, top_k=ev.top_k if ttype == "Retrieval" else None)
                record(second, ev, lambda task=task, second=second, stage1=predictions: _rerank(
                    ce, task, ev, stage1, second.path.parent / "predictions"), extra)
            finally:
                if task.data_loaded:
                    task.unload_data()
    finally:
        bi_encoder.close()
        logger.info("bi-encoder: %d texts encoded, the rest from %s", bi_encoder.texts_encoded,
                    bi_encoder.cache.folder)
    return outcomes


def _rerank(ce: LoadedModel, task: Any, ev: EvalConfig, stage1_predictions: Path, predictions: Path) -> Any:
    """Stage 2: the cross-encoder on stage 1's top_k (Retrieval) or the task's own lists.

    Its own rankings are kept too (``predictions/``), for inspection and for a third stage.
    """
    if task.metadata.type == "Retrieval":
        task.convert_to_reranking(stage1_predictions, top_k=ev.top_k)
    return evaluate_task(ce, task, ev, encoder=LengthSortedCrossEncoder(ce.encoder, STAGE2),
                         prediction_folder=predictions)
