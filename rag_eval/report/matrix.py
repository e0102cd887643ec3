"""The retrieval-stack matrix: retriever x reranker on each Retrieval task of a folder.

For each stage-1 model (a bi-encoder, BM25 or a hybrid, with its retrieval options) and each
reranker that reranked it: the stage-1 main score, the stage-1 recall@top_k (the share of relevant
documents among the candidates: the ceiling a reranker cannot pass), the stage-2 main score, the
gain over stage 1, and the queries per second of each stage. A ``NoReranker`` row per stage-1
model gives stage 1 alone (one-stage runs of Retrieval tasks count too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rag_eval import task_types
from rag_eval.report.rows import ResultRow
from rag_eval.results import Status

MATRIX_COLUMNS = ("task", "retriever", "reranker", "top_k", "metric", "stage1_score", "stage1_recall_at_top_k",
                  "stage2_score", "gain", "stage1_queries_per_s", "stage2_queries_per_s")
NO_RERANKER = "NoReranker"


def _retriever(model: str, variant: str) -> str:
    return f"{model} [{variant}]" if variant else model


def _qps(row: ResultRow | None) -> float | None:
    queries = (row.stack.get("queries") if row else None) or None
    return queries / row.seconds if row is not None and queries and row.seconds else None


def matrix_rows(rows: list[ResultRow]) -> list[dict[str, Any]]:
    """One NoReranker row per stage-1 model and Retrieval task, then one row per reranker and top_k."""
    ok = [r for r in rows if r.status != Status.FAILED and r.score is not None
          and task_types.stage2_of(r.task_type) == "top_k"]  # a retriever over a corpus (Retrieval)
    first = {(r.task, r.model, r.revision, r.stack.get("variant", "")): r for r in ok if r.stage in ("", "stage1")}
    out: list[dict[str, Any]] = []
    for (task, model, _rev, variant), r in sorted(first.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][3])):
        out.append({"task": task, "retriever": _retriever(model, variant), "reranker": NO_RERANKER, "top_k": "",
                    "metric": r.metric, "stage1_score": r.score, "stage1_recall_at_top_k": None,
                    "stage2_score": None, "gain": None, "stage1_queries_per_s": _qps(r), "stage2_queries_per_s": None})
    seconds = [r for r in ok if r.stage == "stage2" and "stage1_model" in r.stack]
    for r in sorted(seconds, key=lambda r: (r.task, r.stack["stage1_model"], r.model, r.stack.get("top_k") or 0)):
        s = r.stack
        base = first.get((r.task, s["stage1_model"], s.get("stage1_revision"), s.get("stage1_variant", "")))
        out.append({"task": r.task, "retriever": _retriever(s["stage1_model"], s.get("stage1_variant", "")),
                    "reranker": _retriever(r.model, s.get("variant", "")), "top_k": s.get("top_k", ""),
                    "metric": r.metric,
                    "stage1_score": base.score if base else None,
                    "stage1_recall_at_top_k": s.get("stage1_recall_at_top_k"), "stage2_score": r.score,
                    "gain": r.score - base.score if base else None,
                    "stage1_queries_per_s": _qps(base), "stage2_queries_per_s": _qps(r)})
    return sorted(out, key=lambda m: (m["task"], m["retriever"], m["reranker"] != NO_RERANKER, m["reranker"],
                                      m["top_k"] or 0))


def formatted(matrix: list[dict[str, Any]]) -> list[dict[str, str]]:
    def fmt(value: Any, spec: str) -> str:
        return "" if value is None or value == "" else format(value, spec)

    return [{**m, "stage1_score": fmt(m["stage1_score"], ".4f"), "stage2_score": fmt(m["stage2_score"], ".4f"),
             "stage1_recall_at_top_k": fmt(m["stage1_recall_at_top_k"], ".4f"), "gain": fmt(m["gain"], "+.4f"),
             "stage1_queries_per_s": fmt(m["stage1_queries_per_s"], ".1f"),
             "stage2_queries_per_s": fmt(m["stage2_queries_per_s"], ".1f")} for m in matrix]


def matrix_chart(matrix: list[dict[str, Any]], path: Path) -> Path:
    """One panel per Retrieval task: per retriever, stage 1 alone and after each reranker (bars), and
    the stage-1 recall@top_k ceiling (marker)."""
    from rag_eval.report.charts import _pyplot, _save

    plt = _pyplot()
    tasks = list(dict.fromkeys(m["task"] for m in matrix))
    fig, axes = plt.subplots(len(tasks), 1, figsize=(10.0, 3.8 * len(tasks)), squeeze=False)
    for ax, task in zip(axes[:, 0], tasks, strict=True):
        rows = [m for m in matrix if m["task"] == task]
        retrievers = list(dict.fromkeys(m["retriever"] for m in rows))
        series = list(dict.fromkeys((m["reranker"], m["top_k"]) for m in rows))
        width = 0.8 / max(1, len(series))
        cmap = plt.get_cmap("tab10")
        for j, (reranker, k) in enumerate(series):
            xs, ys, ceil_x, ceil_y = [], [], [], []
            for i, retriever in enumerate(retrievers):
                m = next((m for m in rows if m["retriever"] == retriever and (m["reranker"], m["top_k"]) ==
                          (reranker, k)), None)
                if m is None:
                    continue
                x = i - 0.4 + width * (j + 0.5)
                xs.append(x)
                ys.append(m["stage1_score"] if reranker == NO_RERANKER else m["stage2_score"])
                if m["stage1_recall_at_top_k"] is not None:
                    ceil_x.append(x)
                    ceil_y.append(m["stage1_recall_at_top_k"])
            label = reranker if reranker == NO_RERANKER else f"{reranker} (top {k})"
            ax.bar(xs, ys, width=width, label=label, color=cmap(j % cmap.N))
            if ceil_x:
                ax.scatter(ceil_x, ceil_y, marker="_", s=300, color="black", zorder=3)
        ax.set_xticks(range(len(retrievers)))
        ax.set_xticklabels(retrievers, fontsize=8, rotation=15, ha="right")
        ax.set_title(f"{task}: main score by retriever and reranker (black dash: stage-1 recall@top_k)", fontsize=9)
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _save(fig, path)
    plt.close(fig)
    return path
