"""Two-stage evaluation: a bi-encoder retrieves each query's top_k, a cross-encoder reranks them.

This is mteb's own retrieve-then-rerank flow, run for every task in one pass (what stage 2 does
with a task is its type's ``stage2`` in :mod:`rag_eval.task_types`):

* ``top_k`` (Retrieval): stage 1 = ``mteb.evaluate`` of the bi-encoder with a ``prediction_folder``;
  ``task.convert_to_reranking(predictions, top_k)`` turns the ranked lists into candidate lists;
  stage 2 = ``mteb.evaluate`` of the cross-encoder on exactly those candidates. Both stages are
  scored with the same metrics.
* ``candidates`` (Reranking): both models score the task's own candidate lists (top_ranked).
* no stage 2 (every other type): the bi-encoder once (stage 1 only).

The bi-encoder runs behind the on-disk embedding cache, so a rerun reuses every embedding it
already has; stage 2 never calls the bi-encoder.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from rag_eval import task_types
from rag_eval.config import EvalConfig
from rag_eval.resolve.models import LoadedModel
from rag_eval.results import ResultPlace, TaskOutcome, experiment_name, write_model_meta
from rag_eval.stages.embedding_cache import cached_encoder
from rag_eval.stages.reranking import LengthSortedCrossEncoder
from rag_eval.stages.task_steps import (
    cached_outcome,
    evaluate_task,
    new_outcome,
    note_vocabulary,
    prepare_task,
    record,
    result_extra,
)

logger = logging.getLogger(__name__)

STAGE1, STAGE2 = "stage1", "stage2"


def run_two_stage(
    bi: LoadedModel,
    ce: LoadedModel,
    tasks: list[Any],
    ev: EvalConfig,
    output_folder: Path,
) -> list[TaskOutcome]:
    bi_encoder = cached_encoder(bi, output_folder, stage=STAGE1)  # always on disk: stage 2 never re-encodes
    first_place = ResultPlace(bi.name, bi.revision, STAGE1)
    second_place = ResultPlace(ce.name, ce.revision, STAGE2, experiment_name(bi.name, bi.revision, ev.top_k))
    write_model_meta(first_place.model_folder(output_folder), bi.encoder.mteb_model_meta)
    write_model_meta(second_place.model_folder(output_folder), ce.encoder.mteb_model_meta)
    stage1_of = {"stage1_model": bi.name, "stage1_revision": bi.revision}
    predictions = first_place.predictions(output_folder)
    outcomes: list[TaskOutcome] = []
    try:
        for task in tasks:
            rerank = task_types.stage2_of(task.metadata.type)
            first = new_outcome(bi, task, output_folder, first_place)
            outcomes.append(first)
            second = None
            if rerank:
                second = new_outcome(ce, task, output_folder, second_place)
                outcomes.append(second)
            first_done = cached_outcome(first, ev) and (
                rerank != "top_k" or (predictions / task.prediction_file_name).is_file()
            )
            if first_done and (second is None or cached_outcome(second, ev)):
                continue
            first.status = "ok"  # a cached stage 1 without predictions runs again (from cached embeddings)
            try:
                sample = prepare_task(task, ev)
                first.sample = sample
                if not first_done:
                    keep = predictions if rerank == "top_k" else None
                    extra = result_extra(bi, task, STAGE1)

                    def evaluate(task=task, keep=keep, extra=extra):
                        result = evaluate_task(bi, task, ev, encoder=bi_encoder, prediction_folder=keep)
                        note_vocabulary(extra, bi_encoder, bi, task)
                        return result

                    record(first, ev, evaluate, extra)
                if second is None or first.status == "failed":
                    if second is not None:
                        second.status, second.error = "failed", "stage 1 failed"
                    continue
                second.sample = sample
                extra = result_extra(ce, task, STAGE2, **stage1_of, top_k=ev.top_k if rerank == "top_k" else None)
                record(second, ev, lambda task=task: _rerank(
                    ce, task, ev, predictions, second_place.predictions(output_folder)), extra)
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
    if task_types.stage2_of(task.metadata.type) == "top_k":
        task.convert_to_reranking(stage1_predictions, top_k=ev.top_k)
    return evaluate_task(ce, task, ev, encoder=LengthSortedCrossEncoder(ce.encoder, STAGE2),
                         prediction_folder=predictions)
