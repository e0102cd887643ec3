"""Failure analysis of two-stage runs: where the retriever missed and where the reranker hurt.

For each stage-2 result of a folder and its stage-1 result (the same task, the stage-1 model the
reranker was fed), from the two per-item files (``per_item/``), per query:

* **retriever misses**: no judged document among the stage-2 candidates (stage 1's top_k for
  Retrieval): no reranker can recover them;
* **inversions**: the reranker lowered the query's main-metric value; **improvements**: it raised it;
* **worst queries**: the lowest stage-2 values, with the query's text, its judged documents and
  both stages' top-ranked documents (judged ones marked).

Written as ``failure_analysis.md`` beside ``summary.md`` (``python -m rag_eval.report failures``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag_eval.report.averages import group_key, labels_of
from rag_eval.report.rows import ResultRow
from rag_eval.report.tables import markdown_table
from rag_eval.results import Status, read_per_item

FAILURES_MD = "failure_analysis.md"
WORST, LISTED, SHOWN_RANKS, EPS = 5, 10, 5, 1e-9


@dataclass
class QueryChange:
    """One query in both stages."""

    qid: str
    stage1: float
    stage2: float
    miss: bool  # no judged document among the candidates
    rank1: int | None  # first judged document's rank (1-based, within the kept top 10)
    rank2: int | None

    @property
    def delta(self) -> float:
        return self.stage2 - self.stage1


@dataclass
class TaskFailures:
    """The analysis of one task's stage 2 against its stage 1."""

    task: str
    metric: str
    stage1: str
    stage2: str
    top_k: int | None
    queries: list[QueryChange] = field(default_factory=list)
    texts: dict[str, dict[str, str]] = field(default_factory=lambda: {"queries": {}, "documents": {}})
    relevant: dict[str, dict[str, int]] = field(default_factory=dict)
    ranked1: dict[str, list[str]] = field(default_factory=dict)
    ranked2: dict[str, list[str]] = field(default_factory=dict)

    @property
    def misses(self) -> list[QueryChange]:
        return [q for q in self.queries if q.miss]

    @property
    def worse(self) -> list[QueryChange]:
        return sorted((q for q in self.queries if q.delta < -EPS), key=lambda q: (q.delta, q.qid))

    @property
    def better(self) -> list[QueryChange]:
        return sorted((q for q in self.queries if q.delta > EPS), key=lambda q: (-q.delta, q.qid))

    @property
    def worst(self) -> list[QueryChange]:
        return sorted(self.queries, key=lambda q: (q.stage2, q.stage1, q.qid))[:WORST]


def stage_pairs(rows: list[ResultRow]) -> list[tuple[ResultRow, ResultRow]]:
    """(stage-1 row, stage-2 row) of every reranked task in the folder."""
    first = {(r.task, r.model, r.revision, r.stack.get("variant", "")): r for r in rows
             if r.stage == "stage1" and r.status != Status.FAILED}
    pairs = []
    for r in rows:
        s = r.stack
        if r.stage != "stage2" or r.status == Status.FAILED or "stage1_model" not in s:
            continue
        base = first.get((r.task, s["stage1_model"], s.get("stage1_revision"), s.get("stage1_variant", "")))
        if base is not None:
            pairs.append((base, r))
    return pairs


def _first_gold(ranked: list[str], gold: dict[str, int]) -> int | None:
    return next((i + 1 for i, d in enumerate(ranked) if d in gold), None)


def analyse(first: dict[str, Any], second: dict[str, Any], metric: str, **names: Any) -> TaskFailures:
    """The per-query changes between two stages' per-item data (each split / subset they share)."""
    out = TaskFailures(metric=metric, **names)
    for split, subsets in second["splits"].items():
        for subset, g2 in subsets.items():
            g1 = first["splits"].get(split, {}).get(subset)
            if g1 is None:
                continue
            many = len(second["splits"]) > 1 or len(subsets) > 1
            recall = g2.get("candidate_recall", {})
            for qid, m2 in g2["queries"].items():
                m1 = g1["queries"].get(qid)
                if m1 is None or metric not in m2:
                    continue
                key = f"{split}/{subset}/{qid}" if many else qid
                gold = g2["relevant"].get(qid, {})
                out.queries.append(QueryChange(key, m1[metric], m2[metric], recall.get(qid, 1.0) == 0,
                                               _first_gold(g1["ranked"].get(qid, []), gold),
                                               _first_gold(g2["ranked"].get(qid, []), gold)))
                out.relevant[key] = gold
                out.ranked1[key], out.ranked2[key] = g1["ranked"].get(qid, []), g2["ranked"].get(qid, [])
                for g in (g1, g2):
                    texts = g.get("texts", {})
                    if qid in texts.get("queries", {}):
                        out.texts["queries"][key] = texts["queries"][qid]
                    out.texts["documents"].update(texts.get("documents", {}))
    return out


def task_failures(rows: list[ResultRow]) -> list[TaskFailures]:
    """The analysis of every reranked task of the folder that has per-item data for both stages."""
    labels = labels_of(rows)
    out = []
    for base, second in stage_pairs(rows):
        p1, p2 = read_per_item(Path(base.path)), read_per_item(Path(second.path))
        if p1 is None or p2 is None or p2.get("unit") != "query":
            continue
        metric = p2.get("main_metric") or second.metric
        out.append(analyse(p1, p2, metric, task=second.task, stage1=labels[group_key(base)],
                           stage2=labels[group_key(second)], top_k=second.stack.get("top_k")))
    return out


def _rank(rank: int | None) -> str:
    return str(rank) if rank is not None else ">10"


def _query_rows(f: TaskFailures, changes: list[QueryChange]) -> list[dict[str, str]]:
    return [{"query": q.qid, "text": f.texts["queries"].get(q.qid, ""), "stage 1": f"{q.stage1:.4f}",
             "stage 2": f"{q.stage2:.4f}", "change": f"{q.delta:+.4f}",
             "first judged rank (1 -> 2)": f"{_rank(q.rank1)} -> {_rank(q.rank2)}"} for q in changes[:LISTED]]


QUERY_COLUMNS = ("query", "text", "stage 1", "stage 2", "change", "first judged rank (1 -> 2)")


def _worst_block(f: TaskFailures, q: QueryChange) -> list[str]:
    docs = f.texts["documents"]
    gold = f.relevant.get(q.qid, {})
    lines = [f"**{q.qid}** ({f.metric} {q.stage1:.4f} -> {q.stage2:.4f}"
             + (", retriever miss" if q.miss else "") + f"): {f.texts['queries'].get(q.qid, '')}", ""]
    lines += [f"- judged `{d}` (grade {g}): {docs.get(d, '')}" for d, g in list(gold.items())[:LISTED]]
    ranked = [{"rank": str(i + 1),
               "stage 1": _doc(f.ranked1[q.qid], i, gold, docs), "stage 2": _doc(f.ranked2[q.qid], i, gold, docs)}
              for i in range(min(SHOWN_RANKS, max(len(f.ranked1[q.qid]), len(f.ranked2[q.qid]))))]
    return [*lines, "", markdown_table(ranked, ("rank", "stage 1", "stage 2"))]


def _doc(ranked: list[str], i: int, gold: dict[str, int], docs: dict[str, str]) -> str:
    if i >= len(ranked):
        return ""
    d = ranked[i]
    mark = f"✓ (grade {gold[d]}) " if d in gold else ""
    text = docs.get(d, "")
    return f"{mark}`{d}` {text[:160] + ('…' if len(text) > 160 else '')}"


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def failures_markdown(analyses: list[TaskFailures]) -> str:
    lines = ["# rag_eval failure analysis", "",
             "Two-stage runs, per task: queries whose judged documents never reached stage 1's top_k (retriever "
             "misses: no reranker can recover them), queries the reranker made worse (inversions) and better, "
             "on the task's main metric, and the worst queries with both stages' rankings (✓ = judged).", ""]
    if not analyses:
        return "\n".join([*lines, "No two-stage result with per-item data for both stages in this folder.", ""])
    for f in analyses:
        n = len(f.queries) or 1
        unchanged = len(f.queries) - len(f.worse) - len(f.better)
        lines += [f"## {f.task}: {f.stage2}", "",
                  f"Stage 1: {f.stage1}; top_k {f.top_k if f.top_k is not None else '(the task candidates)'}; "
                  f"metric {f.metric}.", "",
                  markdown_table([{
                      "queries": len(f.queries),
                      "retriever misses": f"{len(f.misses)} ({100 * len(f.misses) / n:.1f}%)",
                      "reranker worse": f"{len(f.worse)} (mean {_mean([q.delta for q in f.worse]):+.4f})",
                      "reranker better": f"{len(f.better)} (mean {_mean([q.delta for q in f.better]):+.4f})",
                      "unchanged": unchanged,
                      "stage 1": f"{_mean([q.stage1 for q in f.queries]):.4f}",
                      "stage 2": f"{_mean([q.stage2 for q in f.queries]):.4f}"}],
                      ("queries", "retriever misses", "reranker worse", "reranker better", "unchanged",
                       "stage 1", "stage 2"))]
        if f.misses:
            lines += [f"### Retriever misses ({len(f.misses)}; first {min(LISTED, len(f.misses))})", ""]
            lines += [f"- `{q.qid}`: {f.texts['queries'].get(q.qid, '')}" for q in f.misses[:LISTED]] + [""]
        for title, changes in (("Reranker made worse", f.worse), ("Reranker made better", f.better)):
            if changes:
                lines += [f"### {title} ({len(changes)}; largest {min(LISTED, len(changes))})", "",
                          markdown_table(_query_rows(f, changes), QUERY_COLUMNS)]
        lines += [f"### Worst queries (lowest stage-2 {f.metric})", ""]
        for q in f.worst:
            lines += _worst_block(f, q)
    return "\n".join(lines)
