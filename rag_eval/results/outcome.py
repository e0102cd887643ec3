"""What happened to one task in one stage, and its scores in rag_eval's returned shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from rag_eval.results.layout import ResultPlace


class Status(StrEnum):
    """What became of one task in one stage: in a run's outcomes (ok, cached, failed, skipped) and in a
    report's rows (ok, FAILED, running, missing).

    Each value is the text that the reports and files print (``summary.csv``, ``summary.md``, the HTML
    report's cells and the job's progress lines), so a FAILED task reads ``FAILED`` as it always has.
    Lookups ignore case: ``Status("failed")`` is :attr:`FAILED`.
    """

    OK = "ok"
    CACHED = "cached"  # its finished result file was found (overwrite_results: false)
    FAILED = "FAILED"
    SKIPPED = "skipped"  # a model that cannot score the task type (BM25 on STS)
    RUNNING = "running"  # planned by a job that is still running
    MISSING = "missing"  # planned by a job that ended without it

    @classmethod
    def _missing_(cls, value: object) -> Status | None:
        if isinstance(value, str):
            return next((s for s in cls if s.value.lower() == value.lower()), None)
        return None

    @property
    def key(self) -> str:
        """The lower-case name: a job record's counts (``done``: ok / failed / cached)."""
        return self.value.lower()


@dataclass
class TaskOutcome:
    """What happened to one task in one stage (``status``: a :class:`Status`; a string is read as one)."""

    task: str
    task_type: str
    model: str
    stage: str | None = None
    status: Status = Status.OK  # ok | cached | failed | skipped
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)  # split -> metrics
    main_score: float | None = None
    main_metric: str | None = None
    error: str | None = None
    seconds: float = 0.0
    sample: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    place: ResultPlace | None = None  # where its result file lives (revision, experiment)
    top_k: int | None = None  # stage 2 of a Retrieval task: the stage-1 candidates reranked
    finished: bool = False  # its result file is on disk: written by this run, or found there (cached)

    def __post_init__(self) -> None:
        self.status = Status(self.status)


def split_scores(task_result: Any) -> dict[str, dict[str, Any]]:
    """``{split: {metric: value, "main_score": ...}}`` from an mteb TaskResult.

    A single ``default`` subset is flattened; several subsets keep their own dicts under
    ``subsets`` and the split's ``main_score`` is their mean (mteb's aggregation).
    """
    out: dict[str, dict[str, Any]] = {}
    for split, entries in task_result.scores.items():
        clean = [{k: v for k, v in e.items() if k not in ("hf_subset", "languages")} for e in entries]
        if len(entries) == 1:
            out[split] = clean[0]
        else:
            mains = [e["main_score"] for e in entries if e.get("main_score") is not None]
            out[split] = {
                "main_score": sum(mains) / len(mains) if mains else None,
                "subsets": {e["hf_subset"]: c for e, c in zip(entries, clean, strict=False)},
            }
    return out


def main_score_of(scores: dict[str, dict[str, Any]]) -> float | None:
    """The mean main score over a task's splits."""
    mains = [s.get("main_score") for s in scores.values() if s.get("main_score") is not None]
    return sum(mains) / len(mains) if mains else None
