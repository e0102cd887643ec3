"""Per-item data of one evaluation: what mteb computes per query or pair, then averages away.

mteb keeps only the mean of a task's per-query scores and none of an STS task's per-pair
similarities, so a 0.5-point difference between two models cannot be tested. :func:`capture`
keeps them while ``mteb.evaluate`` runs, for the statistics and failure analysis in
``rag_eval.report`` (the file goes to ``per_item/<Task>_per_item.json`` beside the result).
What one item holds is the task family's (``capture_per_item`` in :mod:`rag_eval.task_types`):

* unit ``query`` (Retrieval, Reranking): mteb's ``task_specific_scores`` hook hands over the exact
  run and qrels it scores (after its query filter and ``ignore_identical_ids``); the family recomputes
  per-query metrics from them (``rag_eval.task_types.retrieval``).
* unit ``pair`` (STS, PairClassification): the similarities mteb writes to its prediction file
  (a temporary folder unless one is asked for) and each pair's gold score or label
  (``rag_eval.task_types.pairs``).

Other task types keep no per-item file (see ``rag_eval.report.compare`` for why).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rag_eval import task_types


class Capture:
    """What one ``mteb.evaluate`` of a task left behind, per (split, subset)."""

    def __init__(self, task: Any, prediction_folder: Path | None):
        self.task = task
        self.task_type = task.metadata.type
        self.family = task_types.family(self.task_type)
        self.prediction_folder = prediction_folder
        self.groups: dict[tuple[str, str], dict[str, Any]] = {}

    @property
    def unit(self) -> str | None:
        return self.family.unit

    def payload(self) -> dict[str, Any] | None:
        """The per-item file's content, or None when the task type keeps none (or nothing was seen)."""
        if not self.groups:
            return None
        splits: dict[str, dict[str, Any]] = {}
        for (split, subset), group in sorted(self.groups.items()):
            splits.setdefault(split, {})[subset] = group
        meta = self.task.metadata
        return {"task": meta.name, "task_type": meta.type, "unit": self.unit, "main_metric": meta.main_score,
                "splits": splits}

    # ------------------------------------------------------------------ queries (unit "query")

    def on_scored(self, qrels: dict, results: dict, hf_split: str, hf_subset: str) -> None:
        data = self.task.dataset[hf_subset][hf_split]
        self.groups[(hf_split, hf_subset)] = self.family.capture_per_item(self.task, data, (qrels, results))

    # ------------------------------------------------------------------ pairs (unit "pair")

    def read_pairs(self) -> None:
        """The pairs' similarities from mteb's prediction file, and their gold from the task's data."""
        if self.unit != "pair" or self.prediction_folder is None:
            return
        path = Path(self.prediction_folder) / self.task.prediction_file_name
        if not path.is_file():
            return
        predictions = json.loads(path.read_text(encoding="utf-8"))
        for subset, splits in predictions.items():
            if not isinstance(splits, dict) or subset == "mteb_model_meta":
                continue
            for split, scores in splits.items():
                data = self.task.dataset[subset][split]
                self.groups[(split, subset)] = self.family.capture_per_item(self.task, data, scores)


def required_columns(task: Any) -> tuple[str, ...]:
    """The columns the per-item capture (and mteb's evaluator) reads from each split of a pair task."""
    return task_types.family(task.metadata.type).required_columns(task)


def check_ready(task: Any) -> None:
    """Before anything is encoded: the columns the capture will read are in every evaluated split.

    (A missing column used to surface after the whole task was encoded, inside the capture.)
    """
    wanted = required_columns(task)
    if not wanted:
        return
    from rag_eval.errors import DataError

    for subset, splits in task.dataset.items():
        for split in task.eval_splits:
            data = splits.get(split) if hasattr(splits, "get") else None
            if data is None:
                continue
            columns = set(getattr(data, "column_names", None) or [])
            missing = [c for c in wanted if c not in columns]
            if missing:
                where = split if subset == "default" else f"{subset}/{split}"
                raise DataError(f"task {task.metadata.name}: split {where} has no column {', '.join(missing)} "
                                f"(found: {', '.join(sorted(columns)) or 'none'}), which a {task.metadata.type} "
                                f"task is scored from: fix the data's columns")


@contextmanager
def capture(task: Any, prediction_folder: Path | None = None) -> Iterator[Capture]:
    """Keep the per-item data of the ``mteb.evaluate`` run inside the block.

    ``cap.prediction_folder`` is what to give ``mteb.evaluate``: ``prediction_folder`` itself, or a
    temporary folder for pair tasks (their similarities come from mteb's prediction file).
    """
    with tempfile.TemporaryDirectory(prefix="rag_eval-items-") as tmp:
        folder = prediction_folder
        unit = task_types.family(task.metadata.type).unit
        if folder is None and unit == "pair":
            folder = Path(tmp)
        cap = Capture(task, folder)
        hooked = unit == "query" and hasattr(task, "task_specific_scores")
        if hooked:
            original = task.task_specific_scores

            def task_specific_scores(scores, qrels, results, hf_split, hf_subset):
                cap.on_scored(qrels, results, hf_split, hf_subset)
                return original(scores, qrels, results, hf_split=hf_split, hf_subset=hf_subset)

            task.task_specific_scores = task_specific_scores  # the instance's: mteb's documented override point
        try:
            yield cap
            cap.read_pairs()  # before the temporary folder goes
        finally:
            if hooked:
                vars(task).pop("task_specific_scores", None)
