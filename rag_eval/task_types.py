"""The C-MTEB task types, each described once: what mteb runs it with, how rag_eval reads and
samples it locally, what it is scored by, and what stage 2 does with it.

Everything that depends on a task's type (local readers, the abstract task of a task declared
from local data, its default main score, sampling, the report's column order, texts counted for
speed, the two-stage dispatch) asks this registry. That is mteb's own split between a declarative
``TaskMetadata`` and one ``AbsTask`` per type, plus rag_eval's local layouts.

Light on purpose: mteb is imported only when :attr:`TaskType.abstask` is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag_eval.resolve import local_data


@dataclass(frozen=True)
class TaskType:
    """One task type."""

    name: str
    #: mteb's abstract task, ``module:Class`` (imported on first use)
    abstask_path: str
    #: main score of a task declared from local data (mteb's / C-MTEB's choice for the type)
    main_score: str
    #: ``read(folder, split)`` -> the split in mteb 2.x's in-memory shape
    read: Callable[[Path, str], Any]
    #: ``splits(folder)`` -> the splits a local folder offers
    splits: Callable[[Path], list[str]]
    #: how ``limits`` samples it: retrieval (queries, keeping judged docs) | labelled_rows
    #: (stratified by label) | clusters (stratified texts) | pairs (rows by content)
    sampler: str
    #: texts embedded per row (two sentences per pair); retrieval types count queries + docs
    texts_per_row: int = 1
    #: what stage 2 reranks: "top_k" (stage 1's ranked lists) | "candidates" (the task's own) | None
    stage2: str | None = None

    @property
    def abstask(self) -> type:
        module, _, cls = self.abstask_path.partition(":")
        return getattr(importlib.import_module(module), cls)

    @property
    def retrieves(self) -> bool:
        """Retrieval data (corpus, queries, qrels): rerankable, sampled by query."""
        return self.sampler == "retrieval"


TASK_TYPES: dict[str, TaskType] = {t.name: t for t in (
    TaskType("Retrieval", "mteb.abstasks:AbsTaskRetrieval", "ndcg_at_10", local_data.read_retrieval,
             local_data.retrieval_splits, "retrieval", stage2="top_k"),
    TaskType("Reranking", "mteb.abstasks:AbsTaskRetrieval", "map_at_1000", local_data.read_reranking,
             local_data.jsonl_splits, "retrieval", stage2="candidates"),
    TaskType("STS", "mteb.abstasks:AbsTaskSTS", "cosine_spearman", local_data.read_sts,
             local_data.jsonl_splits, "pairs", texts_per_row=2),
    TaskType("PairClassification", "mteb.abstasks:AbsTaskPairClassification", "max_ap",
             local_data.read_pair_classification, local_data.jsonl_splits, "pairs", texts_per_row=2),
    TaskType("Classification", "mteb.abstasks:AbsTaskClassification", "accuracy",
             local_data.read_classification, local_data.classification_splits, "labelled_rows"),
    TaskType("Clustering", "mteb.abstasks:AbsTaskClustering", "v_measure", local_data.read_clustering,
             local_data.jsonl_splits, "clusters"),
)}

#: C-MTEB's order of task types (the leaderboard's columns)
TYPE_ORDER: tuple[str, ...] = tuple(TASK_TYPES)

#: main metrics of mteb task types rag_eval has no local layout for (to name a plain mteb
#: result's metric when mteb does not know the task)
OTHER_MAIN_SCORES = {
    "MultilabelClassification": "accuracy",
    "Summarization": "cosine_spearman",
    "BitextMining": "f1",
}


def get(name: str) -> TaskType | None:
    """The spec of a task type, or None for an mteb type rag_eval has no local layout for."""
    return TASK_TYPES.get(name)


def main_score(name: str) -> str | None:
    spec = TASK_TYPES.get(name)
    return spec.main_score if spec else OTHER_MAIN_SCORES.get(name)


def order(types: Iterable[str]) -> list[str]:
    """Task types in C-MTEB's order, any others after them alphabetically."""
    types = set(types)
    return [t for t in TYPE_ORDER if t in types] + sorted(types - set(TYPE_ORDER))


def stage2_of(name: str) -> str | None:
    spec = TASK_TYPES.get(name)
    return spec.stage2 if spec else None
