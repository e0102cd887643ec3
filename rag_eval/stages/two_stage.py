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

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag_eval import task_types
from rag_eval.config import EvalConfig
from rag_eval.errors import one_line
from rag_eval.resolve.models import LoadedModel
from rag_eval.results import (
    DISK_ERRNOS,
    ResultPlace,
    TaskOutcome,
    experiment_name,
    storage_guard,
    write_model_meta,
)
from rag_eval.results.layout import PREDICTIONS
from rag_eval.stages.first_stage import first_stage
from rag_eval.stages.reranking import LengthSortedCrossEncoder, cached_cross_encoder, note_scoring
from rag_eval.stages.task_steps import (
    cached_outcome,
    evaluate_task,
    new_outcome,
    note_vocabulary,
    prepare_task,
    record,
    result_extra,
    skip_unscorable,
)

logger = logging.getLogger(__name__)

STAGE1, STAGE2 = "stage1", "stage2"


def result_places(bi_name: str, bi_revision: str, bi_variant: str, ce_name: str, ce_revision: str,
                  ce_variant: str, top_ks: list[int]) -> tuple[ResultPlace, dict[int, ResultPlace]]:
    """Where stage 1 (the stage-1 model, with its retrieval options) and stage 2 (the reranker, one
    experiment per top_k, largest first, with the reranker's own options) file their results."""
    first = ResultPlace(bi_name, bi_revision, STAGE1, bi_variant)
    seconds = {k: ResultPlace(ce_name, ce_revision, STAGE2,
                              experiment_name(bi_name, bi_revision, k, bi_variant, ce_variant))
               for k in top_ks}
    return first, seconds


def run_two_stage(
    bi: LoadedModel,
    ce: LoadedModel,
    tasks: list[Any],
    ev: EvalConfig,
    output_folder: Path,
    outcomes: list[TaskOutcome] | None = None,
    on_done: Callable[[TaskOutcome], None] | None = None,
) -> list[TaskOutcome]:
    """Both stages on every task; outcomes are appended to ``outcomes`` as they start (see run_one_stage),
    and ``on_done`` gets each stage's outcome as soon as it is final (a task the stage-1 model cannot
    score is skipped, no part of the job's plan, and not reported)."""
    stage1 = first_stage(bi, output_folder, STAGE1)  # embeddings always on disk: stage 2 never re-encodes
    reranker = cached_cross_encoder(ce, output_folder if ev.cache_scores else None, STAGE2)
    first_place, second_places = result_places(bi.name, bi.revision, bi.variant, ce.name, ce.revision, ce.variant,
                                               ev.top_ks)
    write_model_meta(first_place.model_folder(output_folder), stage1.run.mteb_model_meta)
    write_model_meta(next(iter(second_places.values())).model_folder(output_folder), ce.encoder.mteb_model_meta)
    stage1_of = {"stage1_model": bi.name, "stage1_revision": bi.revision, "stage1_variant": bi.variant}
    predictions = first_place.predictions(output_folder)
    outcomes = [] if outcomes is None else outcomes
    try:
        for task in tasks:
            rerank = task_types.stage2_of(task.metadata.type)
            first = new_outcome(bi, task, output_folder, first_place)
            outcomes.append(first)
            if skip_unscorable(first, bi, task):
                continue
            seconds = []
            for k, place in second_places.items() if rerank else ():
                second = new_outcome(ce, task, output_folder, place)
                second.top_k = k if rerank == "top_k" else None
                seconds.append(second)
            outcomes.extend(seconds)
            first_done = cached_outcome(first, ev) and (
                rerank != "top_k" or readable_predictions(predictions / task.prediction_file_name)
            )
            todo = [s for s in seconds if not cached_outcome(s, ev)]
            if first_done and not todo:
                _report([first, *seconds], on_done)
                continue
            if not first_done:  # a cached stage 1 without predictions runs again (from cached embeddings)
                first.status = "ok"
            first.finished = first_done
            try:
                source: dict[str, Any] = {}  # where the data came from, in both stages' results
                sample = prepare_task(task, ev, source)
                first.sample = sample
                if not first_done:
                    keep = predictions if rerank == "top_k" else None
                    extra, items = result_extra(bi, task, STAGE1, **source), {}

                    if keep is not None:  # mteb merges into an existing file: a corrupt one must go first
                        readable_predictions(keep / task.prediction_file_name)

                    def evaluate(task=task, keep=keep, extra=extra, items=items):
                        kept = keep / task.prediction_file_name if keep is not None else None
                        with storage_guard(kept or output_folder, partial=kept, errnos=DISK_ERRNOS):
                            result = evaluate_task(bi, task, ev, encoder=stage1.run, prediction_folder=keep,
                                                   items=items)
                        note_vocabulary(extra, stage1, bi, task)
                        return result

                    record(first, ev, evaluate, extra, items)
                _report([first], on_done)  # final now (its file written): counted even if stage 2 then stops
                for second in todo:  # largest top_k first: it scores every pair the smaller ones need
                    if first.status == "failed":
                        second.status, second.error = "failed", "stage 1 failed"
                        continue
                    second.sample = sample
                    extra, items = result_extra(ce, task, STAGE2, **stage1_of, **source, top_k=second.top_k), {}
                    record(second, ev, lambda task=task, second=second, extra=extra, items=items: _rerank(
                        reranker, ce, task, ev, second, predictions, extra, items), extra, items)
            finally:
                if task.data_loaded:
                    task.unload_data()
            _report(seconds, on_done)
    finally:
        stage1.close()
        logger.info("stage 1: %d texts encoded, the rest from the embedding cache; stage 2: %d pairs scored, the "
                    "rest from the score cache", stage1.texts_encoded, reranker.pairs_scored)
    return outcomes


def _report(outcomes: list[TaskOutcome], on_done: Callable[[TaskOutcome], None] | None) -> None:
    if on_done is not None:
        for outcome in outcomes:
            on_done(outcome)


def _rerank(reranker: LengthSortedCrossEncoder, ce: LoadedModel, task: Any, ev: EvalConfig, second: TaskOutcome,
            stage1_predictions: Path, extra: dict[str, Any], items: dict[str, Any]) -> Any:
    """Stage 2: the cross-encoder on stage 1's top_k (Retrieval) or the task's own lists.

    For Retrieval, the share of relevant documents among the candidates is the ceiling stage 2
    cannot pass (``stage1_recall_at_top_k`` in the result file). Its own rankings are kept too
    (``predictions/``), for inspection and for a third stage.
    """
    if second.top_k is not None:
        task.convert_to_reranking(stage1_predictions, top_k=second.top_k)
        extra["stage1_recall_at_top_k"] = candidate_recall(task)
    folder = second.path.parent / PREDICTIONS
    kept = folder / task.prediction_file_name
    readable_predictions(kept)
    with storage_guard(kept, partial=kept, errnos=DISK_ERRNOS):  # mteb writes it in place: no half file left
        result = evaluate_task(ce, task, ev, encoder=reranker, prediction_folder=folder, items=items)
    note_scoring(extra, reranker, ce, task)
    return result


def candidate_recall(task: Any) -> float | None:
    """Mean over the eval splits of: per query with a relevant document, the share of its relevant
    documents among its candidates (``top_ranked``), averaged over queries (pytrec_eval's recall@k)."""
    values = []
    for splits in task.dataset.values():
        for split in task.eval_splits:
            data = splits.get(split) if isinstance(splits, dict) else None
            if not data or not data.get("top_ranked"):
                continue
            per_query = []
            for qid, docs in data["relevant_docs"].items():
                relevant = {d for d, score in docs.items() if score > 0}
                if relevant:
                    per_query.append(len(relevant & set(data["top_ranked"].get(qid, []))) / len(relevant))
            if per_query:
                values.append(sum(per_query) / len(per_query))
    return round(sum(values) / len(values), 6) if values else None


def readable_predictions(path: Path) -> bool:
    """Whether mteb's predictions file at ``path`` exists and parses; a corrupt one (a run killed while
    mteb wrote it in place) is logged once and removed, so its stage runs again."""
    if not path.is_file():
        return False
    try:
        with path.open(encoding="utf-8") as fh:
            if not isinstance(json.load(fh), dict):
                raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        logger.warning("removing unreadable predictions %s (%s): its stage runs again", path,
                       one_line(str(exc))[:200])
        try:
            path.unlink()
        except OSError:
            pass
        return False
    return True
