"""C-MTEB averages per model / stage / experiment, and the labels reports give them."""

from __future__ import annotations

from dataclasses import dataclass, field

from rag_eval import task_types
from rag_eval.report.rows import PENDING, ResultRow
from rag_eval.results import Status

AVERAGE_COLUMNS = ("label", "stage", "model", "revision", "experiment", "n_tasks", "n_failed")


@dataclass
class Averages:
    """C-MTEB averages of one model / stage / experiment.

    As the C-MTEB leaderboard averages: ``per_type[t]`` is the mean main score of the tasks of
    type ``t``; ``overall`` is the mean over all tasks (not the mean of the type means). FAILED
    tasks are left out and counted in ``n_failed``; tasks still running or missing are left out
    (the summary lists them); compare models only over the same tasks.
    """

    label: str
    stage: str
    model: str
    revision: str
    experiment: str
    per_type: dict[str, float] = field(default_factory=dict)
    per_type_n: dict[str, int] = field(default_factory=dict)
    overall: float | None = None
    n_tasks: int = 0
    n_failed: int = 0
    texts: int = 0  # over the tasks whose texts/s is known
    seconds: float = 0.0

    @property
    def texts_per_s(self) -> float | None:
        """Total texts / total evaluation time over the tasks where both are known."""
        return self.texts / self.seconds if self.texts and self.seconds else None


def group_key(row: ResultRow) -> tuple:
    """The (stage, model, revision, experiment) a row belongs to: one series in every report."""
    return row.stage, row.model, row.revision, row.experiment


def labels_of(rows: list[ResultRow]) -> dict[tuple, str]:
    """A unique label per :func:`group_key`; the revision only when needed."""
    keys = {group_key(r): r.label for r in rows}
    count: dict[str, int] = {}
    for label in keys.values():
        count[label] = count.get(label, 0) + 1
    return {k: (f"{lab} @{k[2]}" if count[lab] > 1 else lab) for k, lab in keys.items()}


def cmteb_averages(rows: list[ResultRow]) -> list[Averages]:
    """:class:`Averages` per :func:`group_key`, in the rows' order."""
    labels = labels_of(rows)
    groups: dict[tuple, Averages] = {}
    scores: dict[tuple, dict[str, list[float]]] = {}
    for r in rows:
        if r.status in PENDING:  # not evaluated (yet): neither a score nor a failure
            continue
        k = group_key(r)
        avg = groups.setdefault(k, Averages(labels[k], r.stage, r.model, r.revision, r.experiment))
        if r.status == Status.FAILED or r.score is None:
            avg.n_failed += 1
            continue
        scores.setdefault(k, {}).setdefault(r.task_type, []).append(r.score)
        if r.texts and r.seconds:
            avg.texts += r.texts
            avg.seconds += r.seconds
    for k, avg in groups.items():
        by_type = scores.get(k, {})
        every = [s for values in by_type.values() for s in values]
        avg.per_type = {t: sum(v) / len(v) for t, v in by_type.items()}
        avg.per_type_n = {t: len(v) for t, v in by_type.items()}
        avg.n_tasks = len(every)
        avg.overall = sum(every) / len(every) if every else None
    return list(groups.values())


def type_columns(averages: list[Averages]) -> list[str]:
    """The task types present, in C-MTEB's order."""
    return task_types.order(t for a in averages for t in a.per_type)
