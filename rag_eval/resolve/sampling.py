"""``limits`` and candidate subsampling, with one meaning for every task source.

Each split is drawn by its task family's sampler (``sample`` of :mod:`rag_eval.task_types`' families);
this module runs them over a task's subsets and splits and records what was kept.

The sample is drawn from the loaded data (after a hub or a local folder served it), so the
same data and seed give the same sample wherever it came from. Order never matters: items
are ranked by a seeded hash of their id (or content), not by their position in a file.

* Retrieval: ``limits`` queries; the corpus keeps every document judged for them AND the
  distractors (the whole corpus, or ``corpus_size`` documents that include all judged ones).
* Reranking (retrieval data with candidate lists): ``limits`` queries with full candidate lists.
* STS / PairClassification: ``limits`` pairs. Classification: ``limits`` test rows,
  stratified by label (mteb's few-shot training pool is untouched). Clustering: ``limits``
  texts, stratified by label.
"""

from __future__ import annotations

import logging
from typing import Any

from rag_eval import task_types
from rag_eval.task_types.draw import column as _column

logger = logging.getLogger(__name__)

def sample_task(task: Any, limits: int | None, corpus_size: int | None, seed: int) -> dict[str, Any]:
    """Shrink ``task.dataset`` in place; return what was kept (for the result file).

    ``task.dataset`` is in the settled shape (``[subset][split]``, see
    ``rag_eval.resolve.task_data.settle_shape``). The answer always holds the sizes evaluated, per
    split under ``splits`` (``<subset>/<split>`` for a multilingual task) and summed at the top
    (``rows`` / ``rows_total``, or ``queries`` / ``corpus`` and their totals), with or without
    ``limits``: a result never records a sample it did not draw.
    """
    info: dict[str, Any] = {"seed": seed, "limits": limits, "corpus_size": corpus_size}
    per_split: dict[str, dict[str, int]] = {}
    for subset, splits in task.dataset.items():
        for split in task.eval_splits:
            if split not in splits:
                continue
            data = splits[split]
            where = f"{task.metadata.name}/{subset}/{split}" if subset != "default" else task.metadata.name
            family = task_types.family(task.metadata.type, data)
            splits[split], kept = family.sample(task, data, limits, corpus_size, seed, where)
            per_split[split if subset == "default" else f"{subset}/{split}"] = kept
    if not per_split:
        from rag_eval.errors import DataError

        raise DataError(f"task {task.metadata.name}: none of its eval splits ({', '.join(task.eval_splits)}) is in "
                        f"its loaded data, so nothing can be evaluated or sampled: fix the data or the task's splits")
    info["splits"] = per_split
    for kept in per_split.values():  # the totals over splits (and subsets)
        for key, value in kept.items():
            info[key] = info.get(key, 0) + value
    return info


def sample_task_evalscope(task: Any, limits: int | None) -> dict[str, Any]:
    """``eval.limits_mode: evalscope``: EvalScope's own sample, to reproduce its numbers.

    As EvalScope's ModelScope loader cuts a task: a retrieval split keeps its first ``limits`` queries in file
    order, their judgements, and only the documents judged for them (no distractors: retrieval is easier,
    so scores come out higher than rag_eval's seeded sample over the whole corpus); a reranking split keeps
    those queries' candidate lists too. Every other task keeps the first ``limits`` rows of each of its splits
    (training splits included, as EvalScope's ``select(range(limits))`` does). EvalScope applies this to the
    tasks it loads from ModelScope; rag_eval applies it to every task of the run when asked for.
    """
    info: dict[str, Any] = {"limits": limits, "limits_mode": "evalscope"}
    if limits is None:
        return info
    for subset, splits in task.dataset.items():
        for split in list(splits):
            data = splits[split]
            where = f"{task.metadata.name}/{subset}/{split}" if subset != "default" else task.metadata.name
            if isinstance(data, dict) and "corpus" in data:
                if split in task.eval_splits:
                    info.update(_first_queries_judged_corpus(data, limits, where))
            elif hasattr(data, "select") and len(data) > limits:
                splits[split] = data.select(range(limits))
                if split in task.eval_splits:
                    info.update({"rows": limits, "rows_total": len(data)})
    return info


def _first_queries_judged_corpus(data: dict, limits: int, where: str) -> dict[str, Any]:
    queries, relevant, top_ranked = data["queries"], data["relevant_docs"], data.get("top_ranked")
    total_queries, total_docs = len(queries), len(data["corpus"])
    if total_queries > limits:
        data["queries"] = queries.select(range(limits))
    keep = _column(data["queries"], "id")
    data["relevant_docs"] = {q: relevant[q] for q in keep if q in relevant}
    needed = {d for q in data["relevant_docs"] for d in data["relevant_docs"][q]}
    if top_ranked:
        data["top_ranked"] = {q: top_ranked[q] for q in keep if q in top_ranked}
        needed |= {d for q in data["top_ranked"] for d in data["top_ranked"][q]}
    if total_queries > limits:  # EvalScope cuts the corpus only when it cut the queries
        doc_ids = _column(data["corpus"], "id")
        data["corpus"] = data["corpus"].select([i for i, d in enumerate(doc_ids) if d in needed])
    logger.info("%s: limits_mode evalscope: the first %d queries, %d documents (the judged ones)", where,
                len(keep), len(data["corpus"]))
    return {"queries": len(keep), "queries_total": total_queries, "corpus": len(data["corpus"]),
            "corpus_total": total_docs}
