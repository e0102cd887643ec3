"""What happened to one task in one stage, and its scores in rag_eval's returned shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag_eval.results.layout import ResultPlace


@dataclass
class TaskOutcome:
    """What happened to one task in one stage."""

    task: str
    task_type: str
    model: str
    stage: str | None = None
    status: str = "ok"  # ok | cached | failed | skipped (a model that cannot score the task type)
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
