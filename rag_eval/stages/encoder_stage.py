"""The encoder stage: the stage-1 model (a bi-encoder behind the embedding cache, BM25, a hybrid) on
every task it can score, one-stage or stage 1 of two.

As stage 1 it keeps mteb's ranked lists of each Retrieval task (``predictions/``, for stage 2's
top_k), and a finished result without them is not resumed: stage 1 runs again (from cached
embeddings).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from rag_eval import task_types
from rag_eval.config import EvalConfig
from rag_eval.results import DISK_ERRNOS, ResultPlace, TaskOutcome, storage_guard, write_model_meta
from rag_eval.stages.first_stage import FirstStage, first_stage
from rag_eval.stages.predictions import readable_predictions
from rag_eval.stages.stage import Slot, Stage
from rag_eval.stages.task_steps import evaluate_task, note_vocabulary, result_extra

logger = logging.getLogger(__name__)


class EncoderStage(Stage):
    """``label`` names the stage in bars and caches (``one-stage``, ``stage1``); ``keep_predictions``:
    stage 1 of two (its embeddings always on disk, since stage 2 never re-encodes)."""

    def __init__(self, cfg: Any, model: Any, place: ResultPlace, label: str, keep_predictions: bool = False):
        super().__init__(cfg, model)
        self.place, self.label, self.keep_predictions = place, label, keep_predictions
        self.stage1: FirstStage | None = None
        self.output_folder = Path(".")

    def places(self, task: Any) -> list[Slot]:
        return [Slot(self.place)]

    def open(self, ev: EvalConfig, output_folder: Path) -> None:
        self.output_folder = output_folder
        cache = output_folder if self.keep_predictions or ev.cache_embeddings else None
        self.stage1 = first_stage(self.model, cache, self.label)
        write_model_meta(self.place.model_folder(output_folder), self.stage1.run.mteb_model_meta)

    def close(self) -> None:
        if self.stage1 is not None:
            self.stage1.close()
            logger.info("%s: %d texts encoded, the rest from the embedding cache", self.label,
                        self.stage1.texts_encoded)

    @property
    def predictions(self) -> Path:
        return self.place.predictions(self.output_folder)

    def _keeps(self, task: Any) -> bool:
        return self.keep_predictions and task_types.stage2_of(task.metadata.type) == "top_k"

    def resumable(self, task: Any) -> bool:
        return not self._keeps(task) or readable_predictions(self.predictions / task.prediction_file_name)

    def extra(self, task: Any, source: dict[str, Any], outcome: TaskOutcome) -> dict[str, Any]:
        return result_extra(self.model, task, self.place.stage or None, **source)

    def evaluate(self, task: Any, ev: EvalConfig, outcome: TaskOutcome, extra: dict[str, Any],
                 items: dict[str, Any]) -> Any:
        assert self.stage1 is not None
        if not self.keep_predictions:
            result = evaluate_task(self.model, task, ev, encoder=self.stage1.run, items=items)
        else:
            keep = self.predictions if self._keeps(task) else None
            kept = keep / task.prediction_file_name if keep is not None else None
            if kept is not None:  # mteb merges into an existing file: a corrupt one must go first
                readable_predictions(kept)
            with storage_guard(kept or self.output_folder, partial=kept, errnos=DISK_ERRNOS):
                result = evaluate_task(self.model, task, ev, encoder=self.stage1.run, prediction_folder=keep,
                                       items=items)
        note_vocabulary(extra, self.stage1, self.model, task)
        return result
