"""The cross-encoder's stages: stage 2 after the encoder stage, or a cross-encoder alone.

Stage 2 is mteb's own retrieve-then-rerank flow (what it does with a task is its type's ``stage2``
in :mod:`rag_eval.task_types`):

* ``top_k`` (Retrieval): ``task.convert_to_reranking(predictions, top_k)`` turns stage 1's ranked
  lists into candidate lists, and ``mteb.evaluate`` scores the cross-encoder on exactly those
  candidates, with the same metrics as stage 1; one result per top_k (largest first: it scores every
  pair the smaller ones need);
* ``candidates`` (Reranking): the cross-encoder scores the task's own candidate lists (top_ranked);
* no stage 2 (every other type): nothing.

Alone (no Retrieval task, EvalScope's rule), the cross-encoder scores every task's own candidates.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from rag_eval import task_types
from rag_eval.config import EvalConfig
from rag_eval.resolve.models import LoadedModel
from rag_eval.results import DISK_ERRNOS, ResultPlace, TaskOutcome, experiment_name, storage_guard, write_model_meta
from rag_eval.results.layout import PREDICTIONS
from rag_eval.stages.predictions import readable_predictions
from rag_eval.stages.reranking import LengthSortedCrossEncoder, cached_cross_encoder, note_scoring
from rag_eval.stages.stage import STAGE1, STAGE2, Slot, Stage
from rag_eval.stages.task_steps import evaluate_task, result_extra

logger = logging.getLogger(__name__)


def result_places(bi_name: str, bi_revision: str, bi_variant: str, ce_name: str, ce_revision: str,
                  ce_variant: str, top_ks: list[int]) -> tuple[ResultPlace, dict[int, ResultPlace]]:
    """Where stage 1 (the stage-1 model, with its retrieval options) and stage 2 (the reranker, one
    experiment per top_k, largest first, with the reranker's own options) file their results."""
    first = ResultPlace(bi_name, bi_revision, STAGE1, bi_variant)
    seconds = {k: ResultPlace(ce_name, ce_revision, STAGE2,
                              experiment_name(bi_name, bi_revision, k, bi_variant, ce_variant))
               for k in top_ks}
    return first, seconds


class RerankStage(Stage):
    """Stage 2: ``places`` holds one experiment per top_k; ``first`` is the stage-1 place (its
    predictions) and ``stage1_of`` names the stage-1 model in each result."""

    def __init__(self, cfg: Any, model: Any, places: dict[int, ResultPlace], first: ResultPlace,
                 stage1_of: dict[str, Any]):
        super().__init__(cfg, model)
        self.by_k, self.first, self.stage1_of = places, first, stage1_of
        self.reranker: LengthSortedCrossEncoder | None = None
        self.output_folder = Path(".")

    def places(self, task: Any) -> list[Slot]:
        rerank = task_types.stage2_of(task.metadata.type)
        return [Slot(place, k if rerank == "top_k" else None) for k, place in self.by_k.items()] if rerank else []

    def open(self, ev: EvalConfig, output_folder: Path) -> None:
        self.output_folder = output_folder
        self.reranker = cached_cross_encoder(self.model, output_folder if ev.cache_scores else None, STAGE2)
        write_model_meta(next(iter(self.by_k.values())).model_folder(output_folder), self.model.encoder.mteb_model_meta)

    def close(self) -> None:
        if self.reranker is not None:
            logger.info("stage 2: %d pairs scored, the rest from the score cache", self.reranker.pairs_scored)

    def extra(self, task: Any, source: dict[str, Any], outcome: TaskOutcome) -> dict[str, Any]:
        return result_extra(self.model, task, STAGE2, **self.stage1_of, **source, top_k=outcome.top_k)

    def evaluate(self, task: Any, ev: EvalConfig, outcome: TaskOutcome, extra: dict[str, Any],
                 items: dict[str, Any]) -> Any:
        return _rerank(self.reranker, self.model, task, ev, outcome, self.first.predictions(self.output_folder),
                       extra, items)


class CrossEncoderStage(Stage):
    """A cross-encoder alone, filed at ``place``, on each task's own candidate lists."""

    def __init__(self, cfg: Any, model: Any, place: ResultPlace):
        super().__init__(cfg, model)
        self.place = place
        self.reranker: LengthSortedCrossEncoder | None = None

    def places(self, task: Any) -> list[Slot]:
        return [Slot(self.place)]

    def open(self, ev: EvalConfig, output_folder: Path) -> None:
        self.reranker = cached_cross_encoder(self.model, output_folder if ev.cache_scores else None, "one-stage")
        write_model_meta(self.place.model_folder(output_folder), self.reranker.mteb_model_meta)

    def extra(self, task: Any, source: dict[str, Any], outcome: TaskOutcome) -> dict[str, Any]:
        return result_extra(self.model, task, None, **source)

    def evaluate(self, task: Any, ev: EvalConfig, outcome: TaskOutcome, extra: dict[str, Any],
                 items: dict[str, Any]) -> Any:
        result = evaluate_task(self.model, task, ev, encoder=self.reranker, items=items)
        note_scoring(extra, self.reranker, self.model, task)
        return result


def _rerank(reranker: Any, ce: LoadedModel, task: Any, ev: EvalConfig, second: TaskOutcome,
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
