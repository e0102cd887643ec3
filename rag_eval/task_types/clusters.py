"""Clustering: labelled texts mteb clusters; every text is evaluated (mteb's default embeds 4 %).

* read: ``<split>.jsonl`` of ``text`` and ``label`` -> Dataset(sentences, labels); a legacy clustering
  task (rows that are whole cluster sets) gets one row holding every text and label.
* sample: ``limits`` texts, stratified by label (per cluster set for a legacy task).
* per item: none. ``v_measure`` belongs to the whole partition, not to items.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from rag_eval.task_types import draw
from rag_eval.task_types.base import Family
from rag_eval.task_types.files import label_rows


class Clusters(Family):
    sampler: ClassVar[str] = "clusters"
    not_defined: ClassVar[str] = "not defined: v_measure belongs to the whole partition, not to items"
    task_attrs: ClassVar[dict[str, Any]] = {"max_fraction_of_documents_to_embed": None}

    def read(self, folder: Path, split: str) -> Any:
        return label_rows(folder / f"{split}.jsonl", "text", "sentences", "labels")

    def load(self, task: Any, folder: Path, split_map: dict[str, str], own_score_range: bool) -> None:
        super().load(task, folder, split_map, own_score_range)
        if _is_legacy_clustering(task):  # one row holding every text and label
            task.dataset["default"] = {
                split: type(data).from_dict({"sentences": [list(data["sentences"])], "labels": [list(data["labels"])]})
                for split, data in task.dataset["default"].items()}

    def sample(self, task, data, limits, corpus_size, seed, where):
        text_col, label_col = task.input_column_name, task.label_column_name
        if len(data) and isinstance(data[0][text_col], list):  # legacy: rows are whole cluster sets
            if limits is None:
                total = sum(len(texts) for texts in draw.column(data, text_col))
                return data, {"rows": total, "rows_total": total}
            from datasets import Dataset

            new_rows, kept, total = [], 0, 0
            for row in data:
                texts, labels = row[text_col], row[label_col]
                n = draw.check_size(where, "texts", limits, len(texts)) if limits else len(texts)
                keys = draw.content_keys([f"{draw.cell(lab)}\0{text}" for text, lab in zip(texts, labels, strict=True)])
                idx = draw.stratified_rows(keys, labels, n, seed)
                new_rows.append({text_col: [texts[i] for i in idx], label_col: [labels[i] for i in idx]})
                kept, total = kept + len(idx), total + len(texts)
            return Dataset.from_list(new_rows), {"rows": kept, "rows_total": total}
        return draw.sample_rows(data, limits, seed, where, draw.column(data, text_col), draw.column(data, label_col))


def _is_legacy_clustering(task: Any) -> bool:
    from mteb.abstasks.clustering_legacy import AbsTaskClusteringLegacy

    return isinstance(task, AbsTaskClusteringLegacy)
