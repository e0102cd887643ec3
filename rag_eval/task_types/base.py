"""The hooks every task family answers, with the defaults most of them share.

A family (``retrieval``, ``pairs``, ``labelled``, ``clusters``) is one class per task type of that
family; the registry (:mod:`rag_eval.task_types`) holds one instance per type. Callers ask the
family, never the type's name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from rag_eval.task_types import draw
from rag_eval.task_types.files import jsonl_splits


class Family:
    """One task type's reader, sampler, per-item capture, per-item statistics and text count."""

    #: how ``limits`` samples it: retrieval (queries, keeping judged docs) | labelled_rows
    #: (stratified by label) | clusters (stratified texts) | pairs (rows by content)
    sampler: ClassVar[str] = "pairs"
    #: what one entry of its per-item file is: "query" | "pair" | None (no per-item file)
    unit: ClassVar[str | None] = None
    #: what stage 2 reranks: "top_k" (stage 1's ranked lists) | "candidates" (the task's own) | None (nothing)
    stage2: ClassVar[str | None] = None
    #: why per-item statistics are not defined for it ("" where they are, or where the data decides)
    not_defined: ClassVar[str] = ""
    #: whether mteb also embeds a training pool (Classification's few-shot samples) besides the evaluated texts
    trains: ClassVar[bool] = False
    #: attributes set on the mteb task that evaluates local data (and on a built-in one given a local folder)
    task_attrs: ClassVar[dict[str, Any]] = {}

    # ------------------------------------------------------------------ local data

    def read(self, folder: Path, split: str) -> Any:
        """The split of a local folder in mteb 2.x's in-memory shape for the type."""
        raise NotImplementedError

    def splits(self, folder: Path) -> list[str]:
        """The splits a local folder offers."""
        return jsonl_splits(folder)

    def serves_any_split(self, folder: Path) -> bool:
        """Whether the folder serves every split name (EvalScope's split-free retrieval layout)."""
        return False

    def load(self, task: Any, folder: Path, split_map: dict[str, str], own_score_range: bool) -> None:
        """Fill ``task.dataset`` from ``folder``: ``split_map`` is eval split -> local split."""
        task.dataset = {"default": {split: self.read(folder, local) for split, local in split_map.items()}}

    # ------------------------------------------------------------------ limits

    def sample(self, task: Any, data: Any, limits: int | None, corpus_size: int | None, seed: int,
               where: str) -> tuple[Any, dict[str, int]]:
        """One split drawn by ``limits`` (seeded): the data kept and its sizes (``rows`` / ``rows_total``)."""
        return sample_pairs(data, limits, seed, where)

    # ------------------------------------------------------------------ per item

    def required_columns(self, task: Any) -> tuple[str, ...]:
        """The columns the per-item capture (and mteb's evaluator) reads from each split."""
        return ()

    def capture_per_item(self, task: Any, data: Any, scored: Any) -> dict[str, Any]:
        """One split's per-item record from what mteb scored (``scored``: the family's own shape)."""
        raise NotImplementedError

    def per_item_stats(self, group: dict[str, Any], metric: str) -> tuple[str, list[str], Any, Any] | str:
        """From one split's per-item record: ``(scorer kind, item ids, values, gold)`` for the bootstrap and
        paired tests (scorer kind: mean | spearman | pearson | ap), or why ``metric`` has no per-item form."""
        return self.not_defined or f"not defined for {type(self).__name__}"

    # ------------------------------------------------------------------ speed

    texts_per_row: ClassVar[int] = 1

    def texts(self, sample: dict[str, Any], stage: str | None, top_k: int | None) -> int | None:
        """Texts embedded for a sample's sizes (``rows`` x texts per row)."""
        if "rows" in sample and sample["rows"] is not None:
            return int(sample["rows"]) * self.texts_per_row
        return None

    def dry_run_texts(self, task: Any, data: Any, add: Any) -> None:
        """Hand each text one split embeds to ``add(prompt_type, texts)`` (one text a row by default)."""
        column = task.input_column_name if isinstance(getattr(task, "input_column_name", None), str) else "text"
        values = draw.flat_column(data, column) if column in data.column_names else []
        add(None, [v for row in values for v in (row if isinstance(row, list) else [row])])


def sample_pairs(data, limits, seed, where):
    """STS / PairClassification (and any other row task): ``limits`` rows keyed by content.

    mteb 1.x pair-classification datasets (still on the hub, e.g. C-MTEB's OCNLI) hold the
    whole split in ONE row of lists; their pairs are sampled and the one-row shape kept.
    """
    cols = sorted(data.column_names)
    one_row = len(data) == 1 and cols and all(isinstance(data[0][c], list) for c in cols)
    if limits is None:
        total = len(data[0][cols[0]]) if one_row else len(data)
        return data, {"rows": total, "rows_total": total}
    if one_row:
        from datasets import Dataset

        data = Dataset.from_dict(data[0])
    columns = [draw.column(data, c) for c in cols]
    texts = ["\t".join(draw.cell(v) for v in row) for row in zip(*columns, strict=True)]
    sampled, kept = draw.sample_rows(data, limits, seed, where, texts, None)
    if one_row:
        sampled = type(data).from_dict({c: [list(sampled[c])] for c in sampled.column_names})
    return sampled, kept


class OtherRows(Family):
    """A row task of a type rag_eval has no local layout for: sampled as rows by content, no per-item file."""
