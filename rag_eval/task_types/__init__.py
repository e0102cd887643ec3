"""The C-MTEB task types, each described once: what mteb runs it with, what it is scored by, what stage 2
does with it, and its family: the plug-in that reads, samples, captures and counts it.

Everything that depends on a task's type (local readers, the abstract task of a task declared
from local data, its default main score, sampling, per-item data and its statistics, the report's
column order, texts counted for speed, the two-stage dispatch) asks this registry, and through it the
type's family object (:class:`~rag_eval.task_types.base.Family`): one module per data family, as
``datasets``' ``packaged_modules``:

* :mod:`~rag_eval.task_types.retrieval`: Retrieval, Reranking (corpus, queries, qrels)
* :mod:`~rag_eval.task_types.pairs`: STS, PairClassification (two sentences a row)
* :mod:`~rag_eval.task_types.labelled`: Classification (labelled texts, a few-shot pool)
* :mod:`~rag_eval.task_types.clusters`: Clustering (labelled texts, clustered)

Adding a task type: its family class (a new module, or a subclass in one of these) and one line in
:data:`TASK_TYPES`. That is mteb's own split between a declarative ``TaskMetadata`` and one ``AbsTask``
per type, plus rag_eval's local layouts. Light on purpose: mteb is imported only when
:attr:`TaskType.abstask` is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag_eval.task_types.base import Family, OtherRows
from rag_eval.task_types.clusters import Clusters
from rag_eval.task_types.files import sample_texts
from rag_eval.task_types.labelled import Labelled
from rag_eval.task_types.pairs import STS, PairClassification
from rag_eval.task_types.retrieval import Reranking, Retrieval


@dataclass(frozen=True)
class TaskType:
    """One task type."""

    name: str
    #: mteb's abstract task, ``module:Class`` (imported on first use)
    abstask_path: str
    #: main score of a task declared from local data (mteb's / C-MTEB's choice for the type)
    main_score: str
    #: its reader, sampler, per-item capture and statistics, text count, stage-2 role
    family: Family

    @property
    def abstask(self) -> type:
        module, _, cls = self.abstask_path.partition(":")
        return getattr(importlib.import_module(module), cls)

    @property
    def read(self) -> Callable[[Path, str], Any]:
        """``read(folder, split)`` -> the split in mteb 2.x's in-memory shape"""
        return self.family.read

    @property
    def splits(self) -> Callable[[Path], list[str]]:
        """``splits(folder)`` -> the splits a local folder offers"""
        return self.family.splits

    @property
    def sampler(self) -> str:
        """how ``limits`` samples it: retrieval | labelled_rows | clusters | pairs"""
        return self.family.sampler

    @property
    def texts_per_row(self) -> int:
        """texts embedded per row (two sentences per pair); retrieval types count queries + docs"""
        return self.family.texts_per_row

    @property
    def stage2(self) -> str | None:
        """what stage 2 reranks: "top_k" (stage 1's ranked lists) | "candidates" (the task's own) | None"""
        return self.family.stage2

    @property
    def retrieves(self) -> bool:
        """Retrieval data (corpus, queries, qrels): rerankable, sampled by query."""
        return self.sampler == "retrieval"


TASK_TYPES: dict[str, TaskType] = {t.name: t for t in (
    TaskType("Retrieval", "mteb.abstasks:AbsTaskRetrieval", "ndcg_at_10", Retrieval()),
    TaskType("Reranking", "mteb.abstasks:AbsTaskRetrieval", "map_at_1000", Reranking()),
    TaskType("STS", "mteb.abstasks:AbsTaskSTS", "cosine_spearman", STS()),
    TaskType("PairClassification", "mteb.abstasks:AbsTaskPairClassification", "max_ap", PairClassification()),
    TaskType("Classification", "mteb.abstasks:AbsTaskClassification", "accuracy", Labelled()),
    TaskType("Clustering", "mteb.abstasks:AbsTaskClustering", "v_measure", Clusters()),
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

#: the family of a type rag_eval has no local layout for (rows by content, no per-item file), and of
#: retrieval-shaped data (corpus, queries, qrels) whatever its type
OTHER = OtherRows()
RETRIEVAL_DATA = Reranking()  # stage 2 of an unknown type: its documents kept, no top_k

__all__ = ["OTHER_MAIN_SCORES", "TASK_TYPES", "TYPE_ORDER", "Family", "TaskType", "family", "family_of_unit", "get",
           "main_score", "order", "sample_texts", "stage2_of", "texts"]


def get(name: str) -> TaskType | None:
    """The spec of a task type, or None for an mteb type rag_eval has no local layout for."""
    return TASK_TYPES.get(name)


def family(name: str, data: Any = None) -> Family:
    """The family that handles a task type (:data:`OTHER` for a type with no local layout); given one
    split's ``data``, the family for its shape: retrieval data (a dict with a corpus) is sampled by query
    whatever the type, anything else as rows."""
    spec = TASK_TYPES.get(name)
    fam = spec.family if spec else OTHER
    if data is not None:
        if isinstance(data, dict) and "corpus" in data:
            return fam if fam.sampler == "retrieval" else RETRIEVAL_DATA
        if fam.sampler == "retrieval":
            return OTHER
    return fam


def family_of_unit(unit: str) -> Family | None:
    """The family that reads per-item files of ``unit`` when their task type is not registered: queries as
    retrieval, pairs as pair classification (average precision); None for an unknown unit."""
    return {"query": TASK_TYPES["Retrieval"].family, "pair": TASK_TYPES["PairClassification"].family}.get(unit)


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


def texts(name: str, sample: dict[str, Any] | None, stage: str | None = None, top_k: int | None = None) -> int | None:
    """Texts embedded for a result's sample sizes (see ``rag_eval.report.rows.texts``): by the sample's
    shape, queries + documents (retrieval) or rows x the type's texts per row."""
    if not sample:
        return None
    fam = family(name)
    if "queries" in sample and fam.sampler != "retrieval":
        fam = RETRIEVAL_DATA
    return fam.texts(sample, stage, top_k)
