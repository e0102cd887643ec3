"""Retrieval and Reranking: corpus, queries, qrels (and a reranking task's candidate lists).

* read: a BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``, or EvalScope's one
  ``qrels.jsonl``) -> ``RetrievalSplitData``; mteb 1.x reranking rows (``query``, ``positive``,
  ``negative``) -> a retrieval split whose ``top_ranked`` holds each query's candidates.
* sample: ``limits`` queries; the corpus keeps every document judged for them AND the distractors
  (the whole corpus, or ``corpus_size`` documents that include all judged ones); reranking keeps the
  kept queries' full candidate lists.
* per item (unit ``query``): pytrec_eval's ndcg / map / recall at every k of the task over the run
  mteb scored, mteb's mrr, the judged and top-ranked documents and short texts of them.
* statistics: the mean over queries of the main metric's per-query values.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from rag_eval.errors import DataError
from rag_eval.task_types import draw
from rag_eval.task_types.base import Family
from rag_eval.task_types.files import get_field, iter_jsonl, jsonl_splits, read_jsonl, text_lines

# the readers' warnings keep the logger name they had before the readers moved here (log lines unchanged)
logger = logging.getLogger("rag_eval.resolve.local_data")

RANKED_KEPT, TEXTS_KEPT, TEXT_CHARS, GOLD_TEXTS = 10, 5, 400, 10
DEFAULT_K_VALUES = (1, 3, 5, 10, 20, 100, 1000)
QUERY_FAMILIES = ("ndcg_at_", "map_at_", "recall_at_", "mrr_at_")


class Retrieval(Family):
    """A BEIR folder; stage 2 reranks stage 1's top_k."""

    sampler: ClassVar[str] = "retrieval"
    unit: ClassVar[str | None] = "query"
    stage2: ClassVar[str | None] = "top_k"

    def read(self, folder: Path, split: str) -> Any:
        return read_retrieval(folder, split)

    def splits(self, folder: Path) -> list[str]:
        return retrieval_splits(folder)

    def serves_any_split(self, folder: Path) -> bool:
        return split_free(folder)

    def sample(self, task, data, limits, corpus_size, seed, where):
        if isinstance(data, dict) and "corpus" in data:
            return data, sample_retrieval(data, limits, corpus_size, seed, where)
        return super().sample(task, data, limits, corpus_size, seed, where)

    def capture_per_item(self, task: Any, data: Any, scored: Any) -> dict[str, Any]:
        """``scored``: the (qrels, results) mteb's ``task_specific_scores`` hook handed over."""
        qrels, results = scored
        if getattr(task, "skip_first_result", False):  # as mteb scores it
            results = {q: dict(sorted(d.items(), key=lambda x: x[1], reverse=True)[1:]) for q, d in results.items()}
        k_values = tuple(getattr(task, "k_values", DEFAULT_K_VALUES))
        return query_items(qrels, results, k_values, data)

    def per_item_stats(self, group: dict[str, Any], metric: str):
        if not metric.startswith(QUERY_FAMILIES):
            return f"not defined: {metric} has no per-query form"
        queries = group.get("queries", {})
        if queries and metric not in next(iter(queries.values())):
            return f"not defined: {metric} is not kept per query"
        import numpy as np

        ids = list(queries)
        return "mean", ids, np.array([queries[q][metric] for q in ids], dtype=float), None

    def texts(self, sample: dict[str, Any], stage: str | None, top_k: int | None) -> int | None:
        if "queries" not in sample:
            return super().texts(sample, stage, top_k)
        return retrieval_texts(sample, stage, top_k if self.stage2 == "top_k" else None)

    def dry_run_texts(self, task: Any, data: Any, add: Any) -> None:
        from mteb.types import PromptType

        add(PromptType.query, [t if isinstance(t, str) else " ".join(map(str, t))
                               for t in draw.flat_column(data["queries"], "text")])
        corpus = data["corpus"]
        titles = draw.flat_column(corpus, "title") if "title" in corpus.column_names else None
        bodies = draw.flat_column(corpus, "text")
        add(PromptType.document, [(f"{t} {b}".strip() if t else str(b).strip())
                                  for t, b in zip(titles or [None] * len(bodies), bodies, strict=True)])


class Reranking(Retrieval):
    """mteb 1.x reranking rows; stage 2 reranks the task's own candidates."""

    stage2: ClassVar[str | None] = "candidates"

    def read(self, folder: Path, split: str) -> Any:
        return read_reranking(folder, split)

    def splits(self, folder: Path) -> list[str]:
        return jsonl_splits(folder)

    def serves_any_split(self, folder: Path) -> bool:
        return False


def retrieval_texts(sample: dict[str, Any], stage: str | None, top_k: int | None) -> int | None:
    """Texts embedded for a retrieval sample: queries + documents; stage 2 scores queries x top_k pairs
    (``top_k`` None: a reranking task's own candidates, the documents kept)."""
    queries, corpus = sample.get("queries"), sample.get("corpus")
    if stage == "stage2":
        if top_k and queries:
            return int(queries) * int(top_k)
        return int(corpus) if corpus else None
    if queries is None or corpus is None:
        return None
    return int(queries) + int(corpus)


# ---------------------------------------------------------------------- readers

def retrieval_splits(folder: Path) -> list[str]:
    """Splits of a BEIR folder: ``qrels/*.tsv`` stems (EvalScope's one ``qrels.jsonl``: ``test``)."""
    splits = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
    return splits or (["test"] if split_free(folder) else [])


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
        columns["text"].append(get_field(row, "text", path))
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
            {"id": used_queries, "text": [get_field(queries[q], "text", queries_path) for q in used_queries]}
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
    return [(row["__line__"], str(get_field(row, "query-id", path, (str, int))),
             str(get_field(row, "corpus-id", path, (str, int))), str(row.get("score", 1)))
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
        query = get_field(row, "query", path)
        positives = get_field(row, "positive", path, (list,))
        negatives = get_field(row, "negative", path, (list,))
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



# ---------------------------------------------------------------------- limits

def _reranking_keys(data: dict, query_ids: list[str]) -> list[str]:
    """A key per reranking query from its text, judged documents and candidates (as texts)."""
    query_text = dict(zip(draw.column(data["queries"], "id"), draw.column(data["queries"], "text"), strict=True))
    corpus = data["corpus"]
    doc_text = dict(zip(draw.column(corpus, "id"), draw.column(corpus, "text"), strict=True))
    relevant, top_ranked = data["relevant_docs"], data["top_ranked"]
    keys = []
    for q in query_ids:
        judged = sorted(f"{relevant[q][d]}\0{doc_text.get(d, d)}" for d in relevant[q])
        candidates = sorted(doc_text.get(d, d) for d in top_ranked.get(q, []))
        keys.append("\0".join([str(query_text[q]), *judged, "", *candidates]))
    return draw.content_keys(keys)


def sample_retrieval(data: dict, limits, corpus_size, seed, where) -> dict[str, Any]:
    relevant = data["relevant_docs"]
    queries = data["queries"]
    top_ranked = data.get("top_ranked")
    query_ids = draw.column(queries, "id")
    judged_queries = [q for q in query_ids if relevant.get(q)]
    total_queries = len(judged_queries)
    if limits is None and corpus_size is None:  # the whole task: sizes only (mteb scores judged queries)
        n_docs = len(data["corpus"])
        return {"queries": total_queries, "queries_total": total_queries, "corpus": n_docs, "corpus_total": n_docs}
    keep = judged_queries
    if limits is not None:
        n = draw.check_size(where, "queries", limits, total_queries)
        if top_ranked:  # reranking ids are often positions (a line number): rank by content
            keys = _reranking_keys(data, judged_queries)
            by_key = dict(zip(keys, judged_queries, strict=True))
            keep = [by_key[k] for k in draw.seeded_order(keys, seed)[:n]]
        else:
            keep = draw.seeded_order(judged_queries, seed)[:n]
    keep_set = set(keep)
    if len(keep) < len(queries):
        data["queries"] = queries.select([i for i, q in enumerate(query_ids) if q in keep_set])
    data["relevant_docs"] = {q: relevant[q] for q in keep}
    if top_ranked:
        data["top_ranked"] = {q: top_ranked[q] for q in keep if q in top_ranked}

    corpus = data["corpus"]
    total_docs = len(corpus)
    doc_ids = draw.column(corpus, "id")
    if top_ranked:  # reranking: the documents are the kept queries' candidate lists
        needed = {d for q in data["top_ranked"] for d in data["top_ranked"][q]}
        needed |= {d for q in keep for d in relevant[q]}
        if corpus_size is not None:
            draw.logger.warning("%s: corpus_size does not apply to a reranking task (it keeps its candidate lists)",
                                where)
        data["corpus"] = corpus.select([i for i, d in enumerate(doc_ids) if d in needed])
    elif corpus_size is not None:
        corpus_ids = set(doc_ids)  # a hub's qrels may name documents its corpus lacks
        judged = {d for q in keep for d in relevant[q] if d in corpus_ids}
        if corpus_size >= total_docs:
            draw.logger.warning(
                "%s: corpus_size %d >= %d documents: using all %d", where, corpus_size, total_docs, total_docs
            )
        else:
            if corpus_size < len(judged):
                draw.logger.warning(
                    "%s: corpus_size %d < %d judged documents of the kept queries: keeping all judged ones",
                    where, corpus_size, len(judged),
                )
            others = [d for d in doc_ids if d not in judged]
            fill = set(draw.seeded_order(others, seed)[: max(0, corpus_size - len(judged))])
            keep_docs = judged | fill
            data["corpus"] = corpus.select([i for i, d in enumerate(doc_ids) if d in keep_docs])
    return {
        "queries": len(keep),
        "queries_total": total_queries,
        "corpus": len(data["corpus"]),
        "corpus_total": total_docs,
    }



# ---------------------------------------------------------------------- per query

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


