"""Readers for the plain local dataset layouts (BEIR retrieval, jsonl pairs/rows).

Each reader returns the data in mteb 2.x's in-memory shape for that task type, so a local
folder can back either a task declared in config or a built-in mteb task:

* Retrieval / Reranking -> ``RetrievalSplitData`` (corpus, queries, relevant_docs, top_ranked)
* STS -> Dataset(sentence1, sentence2, score)
* PairClassification -> Dataset(sentence1, sentence2, labels)
* Classification -> DatasetDict(train, test) of (text, label)
* Clustering -> Dataset(sentences, labels)

:mod:`rag_eval.task_types` says which reader and split finder serve which type.
Malformed input is a :class:`DataError` naming ``file:line``.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rag_eval.errors import DataError

logger = logging.getLogger(__name__)

def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a jsonl file; blank lines are skipped, anything else must be a JSON object."""
    return list(iter_jsonl(path))


def text_lines(path: Path) -> Iterator[str]:
    """The lines of a UTF-8 text file; a byte that is not UTF-8 is a :class:`DataError` naming ``file:line``."""
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{path}:{lineno} is not UTF-8 ({exc.reason} at byte {exc.start}): "
                    "re-encode the file as UTF-8"
                ) from None


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of :func:`read_jsonl` one at a time (a large corpus is never held as row dicts)."""
    try:
        for lineno, line in enumerate(text_lines(path), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno} is not valid JSON ({exc.msg}): fix or remove the line") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{lineno} must be a JSON object, got {type(row).__name__}")
            row["__line__"] = lineno
            yield row
    except FileNotFoundError:
        raise DataError(f"{path} not found: the dataset folder must hold this file") from None


def _field(row: dict, key: str, path: Path, kinds: tuple[type, ...] = (str,)) -> Any:
    if key not in row:
        raise DataError(f"{path}:{row['__line__']} has no '{key}' field: every row needs it")
    value = row[key]
    if not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds:
        names = "/".join(k.__name__ for k in kinds)
        raise DataError(f"{path}:{row['__line__']} field '{key}' must be {names}, got {value!r}")
    return value


def retrieval_splits(folder: Path) -> list[str]:
    """Splits of a BEIR folder: ``qrels/*.tsv`` stems (EvalScope's one ``qrels.jsonl``: ``test``)."""
    splits = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
    return splits or (["test"] if split_free(folder) else [])


def jsonl_splits(folder: Path) -> list[str]:
    """Splits of a jsonl folder: the ``*.jsonl`` file stems."""
    return sorted(p.stem for p in folder.glob("*.jsonl") if p.stem not in {"corpus", "queries", "train"})


def classification_splits(folder: Path) -> list[str]:
    """A classification folder evaluates ``test.jsonl`` (``train.jsonl`` is mteb's few-shot pool)."""
    return ["test"] if (folder / "test.jsonl").is_file() else []


def split_free(folder: Path) -> bool:
    """EvalScope's custom retrieval layout: one ``qrels.jsonl`` that serves every split name."""
    return (folder / "qrels.jsonl").is_file() and (folder / "corpus.jsonl").is_file()


def _unique_ids(rows: Iterable[dict], path: Path) -> dict[str, dict]:
    by_id: dict[str, dict] = {}
    line_of: dict[str, int] = {}
    for row in rows:
        by_id[_new_id(row, path, line_of)] = row
    return by_id


def _new_id(row: dict, path: Path, line_of: dict[str, int]) -> str:
    """The row's ``_id`` (or ``id``) as a string, recorded in ``line_of``; refused when missing or repeated."""
    rid = row.get("_id", row.get("id"))
    if rid is None:
        raise DataError(f"{path}:{row['__line__']} has no '_id' field: every row needs it")
    rid = str(rid)
    if rid in line_of:
        raise DataError(f"{path}:{row['__line__']} repeats id '{rid}' (first at line {line_of[rid]}): "
                        "ids must be unique")
    line_of[rid] = row["__line__"]
    return rid


def _corpus_columns(path: Path) -> tuple[dict[str, int], dict[str, list[str]]]:
    """A corpus.jsonl as columns (id, title, text) and each id's line, read row by row: a row's dict is
    dropped once its fields are taken (for 100k documents, the dicts would cost more than the texts)."""
    line_of: dict[str, int] = {}
    columns: dict[str, list[str]] = {"id": [], "title": [], "text": []}
    for row in iter_jsonl(path):
        columns["id"].append(_new_id(row, path, line_of))
        columns["title"].append(str(row.get("title") or ""))
        columns["text"].append(_field(row, "text", path))
    return line_of, columns


def string_dataset(columns: dict[str, list[str]]) -> Any:
    """``Dataset.from_dict`` of string columns, built by Arrow directly (same schema and rows): from_dict's
    type inference holds the texts about twice again as Python objects (+81 MiB on 100k documents)."""
    import pyarrow as pa
    from datasets import Dataset
    from datasets.table import InMemoryTable

    return Dataset(InMemoryTable(pa.table({name: pa.array(values, type=pa.string())
                                           for name, values in columns.items()})))


def read_retrieval(folder: Path, split: str) -> dict[str, Any]:
    from datasets import Dataset

    corpus_path, queries_path = folder / "corpus.jsonl", folder / "queries.jsonl"
    qrels_path = folder / "qrels" / f"{split}.tsv"
    corpus, columns = _corpus_columns(corpus_path)
    queries = _unique_ids(iter_jsonl(queries_path), queries_path)
    if not corpus:
        raise DataError(f"{corpus_path} is empty: a retrieval task needs documents")
    if not qrels_path.is_file() and split_free(folder):
        qrels_path, rows = folder / "qrels.jsonl", _jsonl_qrels(folder / "qrels.jsonl")
    elif not qrels_path.is_file():
        raise DataError(f"{qrels_path} not found: split '{split}' needs qrels/{split}.tsv")
    else:
        rows = _tsv_qrels(qrels_path)
    relevant: dict[str, dict[str, int]] = {}
    for lineno, qid, did, score in rows:
        if qid not in queries:
            raise DataError(f"{qrels_path}:{lineno} names query '{qid}' that is not in {queries_path.name}")
        if did not in corpus:
            raise DataError(f"{qrels_path}:{lineno} names document '{did}' that is not in {corpus_path.name}")
        try:
            value = float(score)
        except ValueError:
            raise DataError(f"{qrels_path}:{lineno} score {score!r} is not a number") from None
        if not math.isfinite(value):
            raise DataError(f"{qrels_path}:{lineno} score {score!r} is not a finite number: use an integer "
                            "relevance (0, 1, 2, ...)")
        relevant.setdefault(qid, {})[did] = int(value)
    if not relevant:
        raise DataError(f"{qrels_path} holds no qrels rows (a header at most): add query-id, corpus-id, score "
                        "lines")
    used_queries = [q for q in queries if q in relevant]
    return {
        "corpus": string_dataset(columns),
        "queries": Dataset.from_dict(
            {"id": used_queries, "text": [_field(queries[q], "text", queries_path) for q in used_queries]}
        ),
        "relevant_docs": relevant,
        "top_ranked": None,
    }


def _tsv_qrels(path: Path) -> list[tuple[int, str, str, str]]:
    """(line, query-id, corpus-id, score) rows of a BEIR ``qrels/<split>.tsv`` (header optional)."""
    rows = []
    reader = csv.reader(text_lines(path), delimiter="\t")
    for row in reader:
        lineno = reader.line_num
        if not row or (lineno == 1 and row[0] == "query-id"):
            continue
        if len(row) < 3:
            raise DataError(f"{path}:{lineno} needs 3 tab-separated columns: query-id corpus-id score")
        rows.append((lineno, row[0], row[1], row[2]))
    return rows


def _jsonl_qrels(path: Path) -> list[tuple[int, str, str, str]]:
    """The same rows from EvalScope's ``qrels.jsonl`` (``{"query-id", "corpus-id", "score"}``, score 1 if absent)."""
    return [(row["__line__"], str(_field(row, "query-id", path, (str, int))),
             str(_field(row, "corpus-id", path, (str, int))), str(row.get("score", 1)))
            for row in read_jsonl(path)]


def read_reranking(folder: Path, split: str) -> dict[str, Any]:
    """mteb 1.x reranking rows -> a retrieval split whose top_ranked holds each query's candidates.

    Documents are identified by their text, so a passage shared by several queries is encoded
    once. Query ids are the row's line number, stable for a given file.
    """
    from datasets import Dataset

    path = folder / f"{split}.jsonl"
    doc_ids: dict[str, str] = {}
    queries, relevant, top_ranked = {}, {}, {}
    for row in iter_jsonl(path):
        query = _field(row, "query", path)
        positives = _field(row, "positive", path, (list,))
        negatives = _field(row, "negative", path, (list,))
        qid = f"q{row['__line__']}"
        candidates = []
        for text in [*positives, *negatives]:
            if not isinstance(text, str):
                raise DataError(f"{path}:{row['__line__']} candidates must be strings, got {text!r}")
            candidates.append(doc_ids.setdefault(text, f"d{len(doc_ids)}"))
        if not positives:
            logger.warning("%s:%s has no positive: the query is skipped by mteb", path, row["__line__"])
        queries[qid] = query
        relevant[qid] = {doc_ids[t]: 1 for t in positives}
        top_ranked[qid] = list(dict.fromkeys(candidates))
    if not queries:
        raise DataError(f"{path} is empty: a reranking task needs rows")
    return {
        "corpus": Dataset.from_dict(
            {"id": list(doc_ids.values()), "title": [""] * len(doc_ids), "text": list(doc_ids)}
        ),
        "queries": Dataset.from_dict({"id": list(queries), "text": list(queries.values())}),
        "relevant_docs": relevant,
        "top_ranked": top_ranked,
    }


def _pairs(folder: Path, split: str, target: str, out_name: str, kinds: tuple[type, ...]):
    from datasets import Dataset

    path = folder / f"{split}.jsonl"
    rows = read_jsonl(path)
    if not rows:
        raise DataError(f"{path} is empty: the split needs rows")
    return Dataset.from_dict(
        {
            "sentence1": [_field(r, "sentence1", path) for r in rows],
            "sentence2": [_field(r, "sentence2", path) for r in rows],
            out_name: [_field(r, target, path, kinds) for r in rows],
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
            value = _field(row, target, path, (int,))
            raise DataError(f"{path}:{row['__line__']} field '{target}' is {value!r}: pair-classification labels "
                            "are 0 (not a pair) or 1 (a pair)")
    return _pairs(folder, split, target, "labels", (int,))


def _label_kinds(path: Path, rows: list[dict], kind_of: dict[str, tuple[str, Path, int]]) -> None:
    """Labels are all strings or all integers, within ``path`` and across the files already seen (``kind_of``
    holds the first label's kind, file and line)."""
    for row in rows:
        kind = "a string" if isinstance(row["label"], str) else "an integer"
        first = kind_of.setdefault("kind", (kind, path, row["__line__"]))
        if first[0] != kind:
            raise DataError(f"{path}:{row['__line__']} label {row['label']!r} is {kind}, but the label at "
                            f"{first[1]}:{first[2]} is {first[0]}: use one kind of label (all strings or all "
                            "integers) in every file of the task")


def _rows(path: Path, text_key: str, out_text: str, out_label: str, kind_of: dict | None = None):
    from datasets import Dataset

    rows = read_jsonl(path)
    if not rows:
        raise DataError(f"{path} is empty: the split needs rows")
    texts = [_field(r, text_key, path) for r in rows]
    labels = [_field(r, "label", path, (int, str)) for r in rows]
    _label_kinds(path, rows, {} if kind_of is None else kind_of)
    return Dataset.from_dict({out_text: texts, out_label: labels})


def read_classification(folder: Path, split: str):
    from datasets import DatasetDict

    kind_of: dict = {}  # one kind of label across both files
    return DatasetDict(
        {
            "train": _rows(folder / "train.jsonl", "text", "text", "label", kind_of),
            split: _rows(folder / f"{split}.jsonl", "text", "text", "label", kind_of),
        }
    )


def read_clustering(folder: Path, split: str):
    return _rows(folder / f"{split}.jsonl", "text", "sentences", "labels")


def sample_texts(folder: Path, limit: int = 200) -> list[str]:
    """A few texts from a local folder, to guess its language."""
    texts: list[str] = []
    for path in sorted(folder.rglob("*.jsonl"))[:2]:
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line, _ in zip(fh, range(limit), strict=False):
                texts.append(line)
    return texts
