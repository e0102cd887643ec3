"""STS and PairClassification: two sentences a row, with a gold score (STS) or a 0/1 label.

* read: ``<split>.jsonl`` of ``sentence1``, ``sentence2`` and ``score`` (STS; a 0/1 ``label`` file serves
  too, as mteb's ATEC) or ``label`` / ``labels`` (PairClassification) -> Dataset(sentence1, sentence2,
  score | labels).
* sample: ``limits`` pairs keyed by content (a one-row mteb 1.x upload keeps its shape).
* per item (unit ``pair``): the similarities mteb writes to its prediction file and each pair's gold;
  a pair's id is a hash of its two sentences, so runs on different samples can be aligned.
* statistics: STS, the Spearman (or Pearson) correlation of a similarity column with the gold scores;
  PairClassification, ``max_ap`` (or one score type's ``_ap``). Threshold metrics (accuracy, f1) are not
  defined: their threshold is tuned on the same pairs.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

from rag_eval.errors import DataError
from rag_eval.task_types import draw
from rag_eval.task_types.base import Family
from rag_eval.task_types.files import get_field, read_jsonl

STS_COLUMNS = {"cosine": "cosine_scores", "manhattan": "manhattan_distances", "euclidean": "euclidean_distances"}
PAIR_COLUMNS = {"similarity": "similarity_scores", "cosine": "cosine_scores", "manhattan": "manhattan_distances",
                "euclidean": "euclidean_distances", "dot": "dot_scores"}
DISTANCES = ("manhattan_distances", "euclidean_distances")  # lower = more similar (mteb flips them for AP)


class Pairs(Family):
    """Two texts a row, sampled as rows by content; per item: one similarity per pair."""

    sampler: ClassVar[str] = "pairs"
    unit: ClassVar[str | None] = "pair"
    texts_per_row: ClassVar[int] = 2

    def columns(self, task: Any) -> tuple[str, str, str]:
        """The task's first and second sentence columns and its gold column."""
        raise NotImplementedError

    def required_columns(self, task: Any) -> tuple[str, ...]:
        return tuple(c for c in self.columns(task) if isinstance(c, str))

    def capture_per_item(self, task: Any, data: Any, scored: Any) -> dict[str, Any]:
        """``scored``: one split's similarity columns from mteb's prediction file."""
        data = _pair_rows(data)
        first, second, gold_column = self.columns(task)
        gold = self.gold(_flat(data[gold_column]))
        ids = pair_ids(_flat(data[first]), _flat(data[second]))
        kept = {k: [float(x) for x in v] for k, v in scored.items() if isinstance(v, list) and len(v) == len(ids)}
        return {"ids": ids, "gold": gold, "scores": kept}

    def gold(self, values: list[Any]) -> list[Any]:
        raise NotImplementedError

    def dry_run_texts(self, task: Any, data: Any, add: Any) -> None:
        first, second, _ = self.columns(task)
        add(task.input1_prompt_type, draw.flat_column(data, first))
        add(task.input2_prompt_type, draw.flat_column(data, second))


class STS(Pairs):
    """Gold: a similarity score; scored by correlation."""

    def read(self, folder: Path, split: str) -> Any:
        return read_sts(folder, split)

    def load(self, task: Any, folder: Path, split_map: dict[str, str], own_score_range: bool) -> None:
        super().load(task, folder, split_map, own_score_range)
        if own_score_range:  # a task declared from local data: gold scores normalised on the data's own range
            scores = [s for d in task.dataset["default"].values() for s in d["score"]]
            task.min_score, task.max_score = min(scores), max(scores)

    def columns(self, task: Any) -> tuple[str, str, str]:
        first, second = task.column_names
        return first, second, "score"

    def required_columns(self, task: Any) -> tuple[str, ...]:
        return (*task.column_names, "score")

    def gold(self, values: list[Any]) -> list[Any]:
        return [float(x) for x in values]

    def per_item_stats(self, group: dict[str, Any], metric: str):
        import numpy as np

        kind, _, method = metric.rpartition("_") if "_" in metric else ("", "", metric)
        if method not in ("spearman", "pearson"):
            return f"not defined: {metric} is not a correlation"
        scores = group["scores"]
        column = STS_COLUMNS.get(kind) or ("similarity_scores" if "similarity_scores" in scores else "cosine_scores")
        if column not in scores:
            return f"not defined: {column} not kept"
        return (method, list(group["ids"]), np.array(scores[column], dtype=float),
                np.array(group["gold"], dtype=float))


class PairClassification(Pairs):
    """Gold: 0/1 labels; scored by average precision."""

    def read(self, folder: Path, split: str) -> Any:
        return read_pair_classification(folder, split)

    def columns(self, task: Any) -> tuple[str, str, str]:
        return task.input1_column_name, task.input2_column_name, task.label_column_name

    def gold(self, values: list[Any]) -> list[Any]:
        return [int(x) for x in values]

    def per_item_stats(self, group: dict[str, Any], metric: str):
        import numpy as np

        scores = group["scores"]
        if metric == "max_ap":
            columns = [c for c in PAIR_COLUMNS.values() if c in scores]
        elif metric.endswith("_ap") and PAIR_COLUMNS.get(metric[:-3]) in scores:
            columns = [PAIR_COLUMNS[metric[:-3]]]
        else:
            return f"not defined: {metric} (only average precision needs no threshold tuned on the same pairs)"
        values = np.column_stack([np.array(scores[c], dtype=float) * (-1 if c in DISTANCES else 1)
                                  for c in columns])
        return "ap", list(group["ids"]), values, np.array(group["gold"], dtype=int)


# ---------------------------------------------------------------------- readers

def _pairs(folder: Path, split: str, target: str, out_name: str, kinds: tuple[type, ...]):
    from datasets import Dataset

    path = folder / f"{split}.jsonl"
    rows = read_jsonl(path)
    if not rows:
        raise DataError(f"{path} is empty: the split needs rows")
    return Dataset.from_dict(
        {
            "sentence1": [get_field(r, "sentence1", path) for r in rows],
            "sentence2": [get_field(r, "sentence2", path) for r in rows],
            out_name: [get_field(r, target, path, kinds) for r in rows],
        }
    )


def read_sts(folder: Path, split: str):
    # a 0/1 "label" file (pair classification data) also serves an STS task (mteb's ATEC)
    path = folder / f"{split}.jsonl"
    first = next(iter(read_jsonl(path)), {})
    target = "score" if "score" in first or "label" not in first else "label"
    return _pairs(folder, split, target, "score", (int, float))


def read_pair_classification(folder: Path, split: str):
    path = folder / f"{split}.jsonl"
    rows = read_jsonl(path)
    first = next(iter(rows), {})
    target = "label" if "label" in first or "labels" not in first else "labels"
    for row in rows:
        if row.get(target) not in (0, 1) or isinstance(row.get(target), bool):
            value = get_field(row, target, path, (int,))
            raise DataError(f"{path}:{row['__line__']} field '{target}' is {value!r}: pair-classification labels "
                            "are 0 (not a pair) or 1 (a pair)")
    return _pairs(folder, split, target, "labels", (int,))



# ---------------------------------------------------------------------- per pair

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
