"""Scores with uncertainty: a bootstrap CI per score, and paired tests between two runs.

The statistics run over the per-item data beside each result file (``per_item/``, written by
``rag_eval.stages.per_item``), recomputing the task's main score from its items; each task family
(``per_item_stats`` in :mod:`rag_eval.task_types`) says how its items give the score:

* Retrieval / Reranking: the mean over queries of the main metric's per-query values (any
  ``ndcg`` / ``map`` / ``recall`` / ``mrr`` ``_at_k``);
* STS: the Spearman (or Pearson) correlation of a similarity column with the gold scores, over pairs;
* PairClassification: ``max_ap`` (or one score type's ``_ap``), average precision over pairs.

Not defined, so reported as such: Classification (mteb averages ten classifiers trained on
different few-shot samples; resampling test items alone would leave that variance out),
Clustering (``v_measure`` belongs to the whole partition, not to items; mteb already scores it
over its own resampled levels), and threshold metrics of PairClassification (accuracy, f1: their
threshold is tuned on the same pairs).

Methods (numpy with a seeded Generator, scipy.stats for ranks and correlations):

* **CI of one score:** percentile bootstrap over items (``n_resamples`` resamples with
  replacement, within each split / subset).
* **Difference B - A:** both runs' items are aligned by id (query id; for pairs a hash of both
  sentences), so runs on different samples are compared on the items they share. The CI is the
  paired percentile bootstrap of the difference; the p-value is a two-sided paired permutation
  (randomisation) test: each item's two values are swapped at random. Correlations and AP are
  rank statistics, so each run's similarities are first replaced by their ranks (Pearson: z-scores),
  which leaves its own score unchanged and makes the two runs' values exchangeable.
* **Verdict:** "not distinguishable" unless p < alpha AND the CI excludes 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag_eval import task_types

N_RESAMPLES, SEED, ALPHA = 1000, 0, 0.05


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """sklearn's ``average_precision_score`` for binary labels (ties as one threshold), in numpy."""
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    ends = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(y)[ends]
    if len(tps) == 0 or tps[-1] == 0:
        return float("nan")
    precision = tps / (ends + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


@dataclass(frozen=True)
class Scorer:
    """How a task's main score comes from its items, and how to make two runs' values exchangeable."""

    kind: str  # mean | spearman | pearson | ap

    def score(self, values: np.ndarray, gold: np.ndarray | None) -> float:
        if self.kind == "mean":
            return float(np.mean(values))
        if self.kind == "ap":
            return max(average_precision(gold, values[:, t]) for t in range(values.shape[1]))
        from scipy import stats

        if np.ptp(values) == 0 or np.ptp(gold) == 0:
            return float("nan")
        corr = stats.spearmanr if self.kind == "spearman" else stats.pearsonr
        return float(corr(values, gold)[0])

    def scores(self, values: np.ndarray, gold: np.ndarray | None, idx: np.ndarray) -> np.ndarray:
        """:meth:`score` of each resample ``values[idx[r]]`` (``idx``: resamples x items), vectorised
        where the statistic allows (means, correlations); AP is computed one resample at a time."""
        if self.kind == "mean":
            return values[idx].mean(axis=1)
        if self.kind == "ap":
            return np.array([self.score(values[row], gold[row]) for row in idx])
        from scipy import stats

        x, y = values[idx], gold[idx]
        if self.kind == "spearman":  # Spearman = Pearson of the (average) ranks, as scipy computes it
            x, y = stats.rankdata(x, axis=1), stats.rankdata(y, axis=1)
        x = x - x.mean(axis=1, keepdims=True)
        y = y - y.mean(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (x * y).sum(axis=1) / np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1))
        return np.clip(r, -1.0, 1.0)  # a constant resample: 0/0 = nan, as score() gives

    def exchangeable(self, values: np.ndarray) -> np.ndarray:
        """Values with the same score, on a scale two runs share (ranks; z-scores for Pearson)."""
        from scipy import stats

        if self.kind == "mean":
            return values
        if self.kind == "pearson":
            sd = values.std()
            return (values - values.mean()) / sd if sd else values * 0.0
        return stats.rankdata(values, axis=0)


@dataclass
class Group:
    """One split / subset of one run: item ids, per-item values, gold (pairs)."""

    ids: list[str]
    values: np.ndarray
    gold: np.ndarray | None = None


@dataclass
class TaskItems:
    """One run's items of one task, ready for the statistics (``reason`` set when not defined)."""

    task: str
    task_type: str
    metric: str
    scorer: Scorer | None = None
    groups: dict[tuple[str, str], Group] = field(default_factory=dict)
    reason: str = ""

    @property
    def n(self) -> int:
        return sum(len(g.ids) for g in self.groups.values())

    def score(self) -> float:
        return float(np.mean([self.scorer.score(g.values, g.gold) for g in self.groups.values()]))


def task_items(payload: dict[str, Any] | None, task: str = "", task_type: str = "", metric: str = "") -> TaskItems:
    """A run's :class:`TaskItems` from its per-item file (None: the run kept no per-item data)."""
    family = task_types.family(task_type)
    if payload is None:
        why = family.not_defined or "no per-item data beside the result (an older run, or a cached stage)"
        return TaskItems(task, task_type, metric, reason=why)
    task, task_type = payload.get("task", task), payload.get("task_type", task_type)
    family = task_types.family(task_type)
    metric = payload.get("main_metric") or metric
    items = TaskItems(task, task_type, metric)
    unit = payload.get("unit")
    if unit is not None and family.unit != unit:  # items of a type the registry does not know: by their unit
        family = task_types.family_of_unit(unit) or family
    if unit is None or family.unit != unit:
        items.reason = family.not_defined or f"not defined for {task_type}"
        return items
    for split, subsets in payload["splits"].items():
        for subset, data in subsets.items():
            built = family.per_item_stats(data, metric)
            if isinstance(built, str):
                items.reason = built
                return items
            kind, ids, values, gold = built
            items.scorer = Scorer(kind)
            group = Group(ids, values, gold)
            if group.ids:
                items.groups[(split, subset)] = group
    if not items.groups:
        items.reason = "no items"
    return items


# --------------------------------------------------------------------------- one score: its CI


@dataclass
class Estimate:
    point: float
    low: float
    high: float
    n: int


def _percentiles(stats: list[float], level: float) -> tuple[float, float]:
    values = np.array([s for s in stats if not np.isnan(s)])
    if not len(values):
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def score_ci(items: TaskItems, n_resamples: int = N_RESAMPLES, seed: int = SEED, level: float = 0.95) -> Estimate:
    """The main score recomputed from the items and its percentile-bootstrap CI over items."""
    rng = np.random.default_rng(seed)
    groups = list(items.groups.values())
    block = max(1, 2_000_000 // max(len(g.ids) for g in groups))  # resamples at a time: ~16 MB of indices
    stats: list[float] = []
    for start in range(0, n_resamples, block):
        size = min(block, n_resamples - start)
        parts = [items.scorer.scores(g.values, g.gold, rng.integers(0, len(g.ids), (size, len(g.ids))))
                 for g in groups]
        stats += np.mean(parts, axis=0).tolist()
    return Estimate(items.score(), *_percentiles(stats, level), items.n)


# --------------------------------------------------------------------------- two runs: the paired test


@dataclass
class Comparison:
    task: str
    task_type: str
    metric: str
    n: int = 0
    a: float | None = None
    b: float | None = None
    diff: float | None = None
    low: float | None = None
    high: float | None = None
    p: float | None = None
    reason: str = ""  # set when the comparison is not defined

    def verdict(self, a: str = "A", b: str = "B", alpha: float = ALPHA) -> str:
        if self.reason:
            return self.reason
        if self.p is not None and self.p < alpha and (self.low > 0 or self.high < 0):
            return f"{b} better" if self.diff > 0 else f"{a} better"
        return "not distinguishable"


def _aligned(a: TaskItems, b: TaskItems) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """Per shared split / subset: A's values, B's values and the gold, on the items both runs have."""
    out = []
    for key, ga in a.groups.items():
        gb = b.groups.get(key)
        if gb is None:
            continue
        where = {i: n for n, i in enumerate(gb.ids)}
        ia = [n for n, i in enumerate(ga.ids) if i in where]
        ib = [where[ga.ids[n]] for n in ia]
        if ia:
            out.append((ga.values[ia], gb.values[ib], None if ga.gold is None else ga.gold[ia]))
    return out


def compare_items(a: TaskItems, b: TaskItems, n_resamples: int = N_RESAMPLES, seed: int = SEED,
                  level: float = 0.95) -> Comparison:
    """B - A on the items both runs share: the difference, its paired bootstrap CI, a paired permutation p."""
    out = Comparison(a.task, a.task_type, a.metric)
    out.reason = a.reason or b.reason or ("" if a.scorer == b.scorer else "the runs' scores differ in kind")
    if out.reason:
        return out
    groups = _aligned(a, b)
    if not groups:
        out.reason = "no shared items"
        return out
    scorer = a.scorer

    def diff(parts) -> float:
        return float(np.mean([scorer.score(vb, g) - scorer.score(va, g) for va, vb, g in parts]))

    out.n = sum(len(va) for va, _, _ in groups)
    out.a = float(np.mean([scorer.score(va, g) for va, _, g in groups]))
    out.b = float(np.mean([scorer.score(vb, g) for _, vb, g in groups]))
    out.diff = out.b - out.a
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_resamples):
        parts = []
        for va, vb, g in groups:
            idx = rng.integers(0, len(va), len(va))
            parts.append((va[idx], vb[idx], None if g is None else g[idx]))
        boots.append(diff(parts))
    out.low, out.high = _percentiles(boots, level)
    swapped = [(scorer.exchangeable(va), scorer.exchangeable(vb), g) for va, vb, g in groups]
    observed = abs(diff(swapped))
    extreme = 0
    for _ in range(n_resamples):
        parts = []
        for va, vb, g in swapped:
            flip = rng.random(len(va)) < 0.5
            if va.ndim > 1:
                flip = flip[:, None]
            parts.append((np.where(flip, vb, va), np.where(flip, va, vb), g))
        extreme += abs(diff(parts)) >= observed - 1e-12
    out.p = (1 + extreme) / (1 + n_resamples)
    return out
