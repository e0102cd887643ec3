"""Classification: labelled texts; mteb trains classifiers on few-shot samples of ``train``.

* read: ``train.jsonl`` (mteb's few-shot pool) and ``<split>.jsonl`` of ``text`` and ``label`` (all strings
  or all integers across both files) -> DatasetDict(train, <split>).
* sample: ``limits`` test rows, stratified by label (the training pool is untouched).
* per item: none. mteb averages ten classifiers trained on different few-shot samples; resampling
  test items alone would leave that variance out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from rag_eval.task_types import draw
from rag_eval.task_types.base import Family
from rag_eval.task_types.files import label_rows


class Labelled(Family):
    sampler: ClassVar[str] = "labelled_rows"
    not_defined: ClassVar[str] = ("not defined: mteb averages 10 classifiers trained on different few-shot samples; "
                                  "resampling test items alone would leave that variance out")
    trains: ClassVar[bool] = True

    def read(self, folder: Path, split: str) -> Any:
        from datasets import DatasetDict

        kind_of: dict = {}  # one kind of label across both files
        return DatasetDict(
            {
                "train": label_rows(folder / "train.jsonl", "text", "text", "label", kind_of),
                split: label_rows(folder / f"{split}.jsonl", "text", "text", "label", kind_of),
            }
        )

    def splits(self, folder: Path) -> list[str]:
        """A classification folder evaluates ``test.jsonl`` (``train.jsonl`` is mteb's few-shot pool)."""
        return ["test"] if (folder / "test.jsonl").is_file() else []

    def load(self, task: Any, folder: Path, split_map: dict[str, str], own_score_range: bool) -> None:
        (split, local_split), = split_map.items()
        data = self.read(folder, local_split)
        if local_split != split:
            data[split] = data.pop(local_split)
        task.dataset = {"default": data}

    def sample(self, task, data, limits, corpus_size, seed, where):
        labels = draw.column(data, "label" if "label" in data.column_names else task.label_column_name)
        col = task.input_column_name if isinstance(task.input_column_name, str) else "text"
        return draw.sample_rows(data, limits, seed, where, draw.column(data, col), labels)
