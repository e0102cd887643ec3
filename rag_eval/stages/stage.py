"""A stage: one model's pass over the tasks, as one class with fixed hooks (like mteb's ``AbsTask*``).

The runner (:mod:`rag_eval.stages.runner`) calls the hooks in one order for every task, and its
``stages_of`` composes a run's stages from these kinds:

* ``encoder``: the stage-1 model (bi-encoder, BM25, hybrid), one-stage or stage 1 of two
  (:mod:`rag_eval.stages.encoder_stage`);
* ``rerank``: the cross-encoder over stage 1's top_k or the task's own candidates, stage 2
  (:mod:`rag_eval.stages.rerank_stage`);
* ``cross_encoder``: a cross-encoder alone on tasks with candidate lists (EvalScope's rule for a
  reranker with no Retrieval task).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag_eval.config import EvalConfig
from rag_eval.results import ResultPlace, TaskOutcome

STAGE1, STAGE2 = "stage1", "stage2"


@dataclass(frozen=True)
class Slot:
    """One result file a stage writes for a task: where, and the top_k it reranked (stage 2 of Retrieval)."""

    place: ResultPlace
    top_k: int | None = None


class Stage(ABC):
    """One model's pass. ``cfg`` is its ModelConfig; ``model`` the LoadedModel (None while a job is
    only planned, before the models load)."""

    def __init__(self, cfg: Any, model: Any = None):
        self.cfg, self.model = cfg, model

    @abstractmethod
    def places(self, task: Any) -> list[Slot]:
        """The result files this stage writes for ``task`` (none: the stage has nothing to do with it)."""

    def skips(self, task: Any) -> bool:
        """Whether the model cannot score ``task`` at all (a search model on a type that does not retrieve):
        as the first stage, the task is skipped (no part of the plan)."""
        from rag_eval.stages.task_steps import unscorable

        return unscorable(self.cfg, task.metadata.type)

    def open(self, ev: EvalConfig, output_folder: Path) -> None:  # noqa: B027 - a hook: nothing by default
        """Before the first task: wrap the model for mteb (caches) and write its model meta."""

    def close(self) -> None:  # noqa: B027 - a hook: nothing by default
        """After the last task (or a stop)."""

    def resumable(self, task: Any) -> bool:
        """Whether a finished result file of ``task`` is enough to skip it (``overwrite_results: false``)."""
        return True

    @abstractmethod
    def extra(self, task: Any, source: dict[str, Any], outcome: TaskOutcome) -> dict[str, Any]:
        """The ``rag_eval`` block of the result file (``source``: where the data came from)."""

    @abstractmethod
    def evaluate(self, task: Any, ev: EvalConfig, outcome: TaskOutcome, extra: dict[str, Any],
                 items: dict[str, Any]) -> Any:
        """mteb's evaluation of the prepared ``task`` -> TaskResult; ``items`` gets the per-item data."""
