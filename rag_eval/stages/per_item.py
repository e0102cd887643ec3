"""Per-item data of one evaluation: what mteb computes per query or pair, then averages away.

mteb keeps only the mean of a task's per-query scores and none of an STS task's per-pair
similarities, so a 0.5-point difference between two models cannot be tested. :func:`capture`
keeps them while ``mteb.evaluate`` runs, for the statistics and failure analysis in
``rag_eval.report`` (the file goes to ``per_item/<Task>_per_item.json`` beside the result):

* Retrieval / Reranking (unit ``query``): mteb's ``task_specific_scores`` hook hands over the exact
  run and qrels it scores (after its query filter and ``ignore_identical_ids``); pytrec_eval
  recomputes per query ndcg / map / recall at every k of the task, plus mrr as mteb counts it
  (ties broken by document id, as pytrec_eval does). Also kept: the judged documents, the top 10
  ranked, the share of judged documents among the candidates (stage 2: stage 1's top_k) and short
  texts of the queries, judged and top-ranked documents.
* STS / PairClassification (unit ``pair``): the similarities mteb writes to its prediction file
  (a temporary folder unless one is asked for) and each pair's gold score or label; a pair's id is
  a hash of its two sentences, so runs on different samples can be aligned.

Other task types keep no per-item file (see ``rag_eval.report.compare`` for why).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

QUERY_TYPES = ("Retrieval", "Reranking")
PAIR_TYPES = ("STS", "PairClassification")
RANKED_KEPT, TEXTS_KEPT, TEXT_CHARS, GOLD_TEXTS = 10, 5, 400, 10
DEFAULT_K_VALUES = (1, 3, 5, 10, 20, 100, 1000)


class Capture:
    """What one ``mteb.evaluate`` of a task left behind, per (split, subset)."""

    def __init__(self, task: Any, prediction_folder: Path | None):
        self.task = task
        self.task_type = task.metadata.type
        self.prediction_folder = prediction_folder
        self.groups: dict[tuple[str, str], dict[str, Any]] = {}

    @property
    def unit(self) -> str | None:
        return "query" if self.task_type in QUERY_TYPES else "pair" if self.task_type in PAIR_TYPES else None

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

    # ------------------------------------------------------------------ queries (Retrieval, Reranking)

    def on_scored(self, qrels: dict, results: dict, hf_split: str, hf_subset: str) -> None:
        data = self.task.dataset[hf_subset][hf_split]
        if getattr(self.task, "skip_first_result", False):  # as mteb scores it
            results = {q: dict(sorted(d.items(), key=lambda x: x[1], reverse=True)[1:]) for q, d in results.items()}
        k_values = tuple(getattr(self.task, "k_values", DEFAULT_K_VALUES))
        self.groups[(hf_split, hf_subset)] = query_items(qrels, results, k_values, data)

    # ------------------------------------------------------------------ pairs (STS, PairClassification)

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
                data = _pair_rows(self.task.dataset[subset][split])
                self.groups[(split, subset)] = self._pair_group(data, scores)

    def _pair_group(self, data: Any, scores: dict[str, Any]) -> dict[str, Any]:
        task = self.task
        if self.task_type == "STS":
            first, second = task.column_names
            gold = [float(x) for x in data["score"]]
        else:
            first, second = task.input1_column_name, task.input2_column_name
            gold = [int(x) for x in _flat(data[task.label_column_name])]
        ids = pair_ids(_flat(data[first]), _flat(data[second]))
        kept = {k: [float(x) for x in v] for k, v in scores.items() if isinstance(v, list) and len(v) == len(ids)}
        return {"ids": ids, "gold": gold, "scores": kept}


def required_columns(task: Any) -> tuple[str, ...]:
    """The columns the per-item capture (and mteb's evaluator) reads from each split of a pair task."""
    if task.metadata.type == "STS":
        return (*task.column_names, "score")
    if task.metadata.type == "PairClassification":
        return tuple(c for c in (task.input1_column_name, task.input2_column_name, task.label_column_name)
                     if isinstance(c, str))
    return ()


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
        if folder is None and task.metadata.type in PAIR_TYPES:
            folder = Path(tmp)
        cap = Capture(task, folder)
        hooked = task.metadata.type in QUERY_TYPES and hasattr(task, "task_specific_scores")
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


def query_items(qrels: dict, results: dict, k_values: tuple[int, ...], data: dict[str, Any]) -> dict[str, Any]:
    """Per query: pytrec_eval's ndcg / map / recall at every k, mteb's mrr, the judged and ranked documents."""
    import pytrec_eval

    ks = ",".join(str(k) for k in k_values)
    qrels = {q: {d: int(s) for d, s in docs.items()} for q, docs in qrels.items()}
    run = {q: {d: float(s) for d, s in docs.items()} for q, docs in results.items() if q in qrels}
    measured = pytrec_eval.RelevanceEvaluator(qrels, {f"ndcg_cut.{ks}", f"map_cut.{ks}", f"recall.{ks}"}).evaluate(run)
    ranked = {q: [d for d, _ in sorted(docs.items(), key=lambda x: (x[1], x[0]), reverse=True)[: max(k_values)]]
              for q, docs in run.items()}
    candidates = data.get("top_ranked") or {}
    metrics, relevant, top, candidate_recall = {}, {}, {}, {}
    for q, values in measured.items():
        gold = {d: s for d, s in qrels[q].items() if s > 0}
        m = {}
        for k in k_values:
            m[f"ndcg_at_{k}"] = values[f"ndcg_cut_{k}"]
            m[f"map_at_{k}"] = values[f"map_cut_{k}"]
            m[f"recall_at_{k}"] = values[f"recall_{k}"]
            first = next((i for i, d in enumerate(ranked[q][:k]) if d in gold), None)
            m[f"mrr_at_{k}"] = 0.0 if first is None else 1.0 / (first + 1)
        metrics[q], relevant[q], top[q] = m, gold, ranked[q][:RANKED_KEPT]
        if q in candidates and gold:
            candidate_recall[q] = len(set(gold) & set(candidates[q])) / len(gold)
    return {"queries": metrics, "relevant": relevant, "ranked": top,
            **({"candidate_recall": candidate_recall} if candidates else {}),
            "texts": _texts(data, relevant, top)}


def _texts(data: dict[str, Any], relevant: dict, top: dict) -> dict[str, dict[str, str]]:
    """Short texts of the queries and of each query's judged and top-ranked documents (for reading failures)."""
    wanted_docs = {d for q in top for d in (list(relevant[q])[:GOLD_TEXTS] + top[q][:TEXTS_KEPT])}
    queries = {row["id"]: _short(row.get("text")) for row in _rows_with(data["queries"], set(top))}
    docs = {}
    for row in _rows_with(data["corpus"], wanted_docs):
        title, text = row.get("title") or "", str(row.get("text") or "")
        docs[row["id"]] = _short(text if not title or text.startswith(title) else f"{title}: {text}")
    return {"queries": queries, "documents": docs}


def _rows_with(table: Any, ids: set[str]) -> Iterator[dict[str, Any]]:
    """The rows of a datasets table (or a list of dicts) whose ``id`` is in ``ids``, without reading the others."""
    if hasattr(table, "select") and hasattr(table, "column_names"):
        table = table.select([i for i, x in enumerate(table["id"]) if x in ids])
    return (row for row in table if row["id"] in ids)


def _short(text: Any) -> str:
    text = " ".join(str(text if not isinstance(text, list) else " / ".join(map(str, text))).split())
    return text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1] + "…"


def _pair_rows(data: Any) -> Any:
    # mteb 1.x pair-classification uploads hold the whole split in one row of lists
    return data[0] if len(data) == 1 and isinstance(data[0][next(iter(data[0]))], list) else data


def _flat(column: Any) -> list[Any]:
    values = list(column)
    return values[0] if len(values) == 1 and isinstance(values[0], list) else values


def pair_ids(first: list[Any], second: list[Any]) -> list[str]:
    """A content id per pair (a hash of both sentences, repeats numbered): the same pair, the same id, in
    every run and sample."""
    seen: Counter[str] = Counter()
    ids = []
    for a, b in zip(first, second, strict=True):
        key = hashlib.sha1(f"{a}\0{b}".encode()).hexdigest()[:16]
        ids.append(f"{key}-{seen[key]}" if seen[key] else key)
        seen[key] += 1
    return ids
