"""``limits`` and candidate subsampling, with one meaning for every task source.

The sample is drawn from the loaded data (after a hub or a local folder served it), so the
same data and seed give the same sample wherever it came from. Order never matters: items
are ranked by a seeded hash of their id (or content), not by their position in a file.

* Retrieval: ``limits`` queries; the corpus keeps every document judged for them AND the
  distractors (the whole corpus, or ``corpus_size`` documents that include all judged ones).
* Reranking (retrieval data with candidate lists): ``limits`` queries with full candidate lists.
* STS / PairClassification: ``limits`` pairs. Classification: ``limits`` test rows,
  stratified by label (mteb's few-shot training pool is untouched). Clustering: ``limits``
  texts, stratified by label.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, defaultdict
from typing import Any

from rag_eval import task_types

logger = logging.getLogger(__name__)


def _rank_key(seed: int, key: str) -> bytes:
    return hashlib.sha1(f"{seed}\0{key}".encode()).digest()


def seeded_order(keys: list[str], seed: int) -> list[str]:
    """``keys`` in a seeded pseudo-random order that does not depend on their input order."""
    return sorted(keys, key=lambda k: (_rank_key(seed, k), k))


def _content_keys(texts: list[str]) -> list[str]:
    """Row keys from content; repeated rows get an occurrence count so each stays distinct."""
    seen: Counter[str] = Counter()
    keys = []
    for text in texts:
        keys.append(f"{text}\0{seen[text]}")
        seen[text] += 1
    return keys


def _pick_rows(keys: list[str], n: int, seed: int) -> list[int]:
    index = {k: i for i, k in enumerate(keys)}
    return sorted(index[k] for k in seeded_order(list(index), seed)[:n])


def _stratified_rows(keys: list[str], labels: list[Any], n: int, seed: int) -> list[int]:
    """``n`` rows with label proportions kept (largest remainder), each label seeded."""
    by_label: dict[Any, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[str(label)].append(i)
    total = len(labels)
    quotas = {lab: n * len(rows) / total for lab, rows in by_label.items()}
    counts = {lab: int(q) for lab, q in quotas.items()}
    for lab in sorted(quotas, key=lambda lab: (-(quotas[lab] - counts[lab]), lab))[: n - sum(counts.values())]:
        counts[lab] += 1
    chosen: list[int] = []
    for lab, rows in by_label.items():
        order = seeded_order([keys[i] for i in rows], seed)[: counts[lab]]
        pos = {keys[i]: i for i in rows}
        chosen.extend(pos[k] for k in order)
    return sorted(chosen)


def _check_size(name: str, what: str, asked: int, available: int) -> int:
    if asked >= available:
        logger.warning("%s: limits %d >= %d %s: using all %d", name, asked, available, what, available)
        return available
    return asked


def sample_task(task: Any, limits: int | None, corpus_size: int | None, seed: int) -> dict[str, Any]:
    """Shrink ``task.dataset`` in place; return what was kept (for the result file).

    ``task.dataset`` is in the settled shape (``[subset][split]``, see
    ``rag_eval.resolve.task_data.settle_shape``). The answer always holds the sizes evaluated, per
    split under ``splits`` (``<subset>/<split>`` for a multilingual task) and summed at the top
    (``rows`` / ``rows_total``, or ``queries`` / ``corpus`` and their totals), with or without
    ``limits``: a result never records a sample it did not draw.
    """
    info: dict[str, Any] = {"seed": seed, "limits": limits, "corpus_size": corpus_size}
    spec = task_types.get(task.metadata.type)
    sampler = spec.sampler if spec else "pairs"  # any other row task: rows by content
    per_split: dict[str, dict[str, int]] = {}
    for subset, splits in task.dataset.items():
        for split in task.eval_splits:
            if split not in splits:
                continue
            data = splits[split]
            where = f"{task.metadata.name}/{subset}/{split}" if subset != "default" else task.metadata.name
            if isinstance(data, dict) and "corpus" in data:
                kept = _sample_retrieval(data, limits, corpus_size, seed, where)
            elif sampler == "labelled_rows":
                labels = _column(data, "label" if "label" in data.column_names else task.label_column_name)
                col = task.input_column_name if isinstance(task.input_column_name, str) else "text"
                splits[split], kept = _sample_rows(data, limits, seed, where, _column(data, col), labels)
            elif sampler == "clusters":
                splits[split], kept = _sample_clustering(task, data, limits, seed, where)
            else:
                splits[split], kept = _sample_pairs(data, limits, seed, where)
            per_split[split if subset == "default" else f"{subset}/{split}"] = kept
    if not per_split:
        from rag_eval.errors import DataError

        raise DataError(f"task {task.metadata.name}: none of its eval splits ({', '.join(task.eval_splits)}) is in "
                        f"its loaded data, so nothing can be evaluated or sampled: fix the data or the task's splits")
    info["splits"] = per_split
    for kept in per_split.values():  # the totals over splits (and subsets)
        for key, value in kept.items():
            info[key] = info.get(key, 0) + value
    return info


def _column(data: Any, name: str) -> list:
    """A whole column as a Python list in one Arrow conversion (iterating a ``datasets`` Column
    converts row by row: 0.5 s for 50,000 pairs, more than encoding the sample)."""
    column = data[name]
    return column if isinstance(column, list) else column[:]


def _cell(value: Any) -> str:
    """A cell as key text; numbers by value, so ``1`` and ``1.0`` (int vs float column) agree."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(float(value))
    return str(value)


def _sample_rows(data, limits, seed, where, texts, labels):
    total = len(data)
    if limits is None:
        return data, {"rows": total, "rows_total": total}
    n = _check_size(where, "rows", limits, total)
    # a text is keyed with its label: a text repeated under two labels must not swap keys
    # with the other copy when the rows come in another order
    if labels is not None:
        texts = [f"{_cell(label)}\0{text}" for text, label in zip(texts, labels, strict=True)]
    keys = _content_keys([str(t) for t in texts])
    rows = _stratified_rows(keys, list(labels), n, seed) if labels is not None else _pick_rows(keys, n, seed)
    return data.select(rows), {"rows": len(rows), "rows_total": total}


def _sample_pairs(data, limits, seed, where):
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
    columns = [_column(data, c) for c in cols]
    texts = ["\t".join(_cell(v) for v in row) for row in zip(*columns, strict=True)]
    sampled, kept = _sample_rows(data, limits, seed, where, texts, None)
    if one_row:
        sampled = type(data).from_dict({c: [list(sampled[c])] for c in sampled.column_names})
    return sampled, kept


def _sample_clustering(task, data, limits, seed, where):
    text_col, label_col = task.input_column_name, task.label_column_name
    if len(data) and isinstance(data[0][text_col], list):  # legacy: rows are whole cluster sets
        if limits is None:
            total = sum(len(texts) for texts in _column(data, text_col))
            return data, {"rows": total, "rows_total": total}
        from datasets import Dataset

        new_rows, kept, total = [], 0, 0
        for row in data:
            texts, labels = row[text_col], row[label_col]
            n = _check_size(where, "texts", limits, len(texts)) if limits else len(texts)
            keys = _content_keys([f"{_cell(lab)}\0{text}" for text, lab in zip(texts, labels, strict=True)])
            idx = _stratified_rows(keys, labels, n, seed)
            new_rows.append({text_col: [texts[i] for i in idx], label_col: [labels[i] for i in idx]})
            kept, total = kept + len(idx), total + len(texts)
        return Dataset.from_list(new_rows), {"rows": kept, "rows_total": total}
    return _sample_rows(data, limits, seed, where, _column(data, text_col), _column(data, label_col))


def _reranking_keys(data: dict, query_ids: list[str]) -> list[str]:
    """A key per reranking query from its text, judged documents and candidates (as texts)."""
    query_text = dict(zip(_column(data["queries"], "id"), _column(data["queries"], "text"), strict=True))
    corpus = data["corpus"]
    doc_text = dict(zip(_column(corpus, "id"), _column(corpus, "text"), strict=True))
    relevant, top_ranked = data["relevant_docs"], data["top_ranked"]
    keys = []
    for q in query_ids:
        judged = sorted(f"{relevant[q][d]}\0{doc_text.get(d, d)}" for d in relevant[q])
        candidates = sorted(doc_text.get(d, d) for d in top_ranked.get(q, []))
        keys.append("\0".join([str(query_text[q]), *judged, "", *candidates]))
    return _content_keys(keys)


def _sample_retrieval(data: dict, limits, corpus_size, seed, where) -> dict[str, Any]:
    relevant = data["relevant_docs"]
    queries = data["queries"]
    top_ranked = data.get("top_ranked")
    query_ids = _column(queries, "id")
    judged_queries = [q for q in query_ids if relevant.get(q)]
    total_queries = len(judged_queries)
    if limits is None and corpus_size is None:  # the whole task: sizes only (mteb scores judged queries)
        n_docs = len(data["corpus"])
        return {"queries": total_queries, "queries_total": total_queries, "corpus": n_docs, "corpus_total": n_docs}
    keep = judged_queries
    if limits is not None:
        n = _check_size(where, "queries", limits, total_queries)
        if top_ranked:  # reranking ids are often positions (a line number): rank by content
            keys = _reranking_keys(data, judged_queries)
            by_key = dict(zip(keys, judged_queries, strict=True))
            keep = [by_key[k] for k in seeded_order(keys, seed)[:n]]
        else:
            keep = seeded_order(judged_queries, seed)[:n]
    keep_set = set(keep)
    if len(keep) < len(queries):
        data["queries"] = queries.select([i for i, q in enumerate(query_ids) if q in keep_set])
    data["relevant_docs"] = {q: relevant[q] for q in keep}
    if top_ranked:
        data["top_ranked"] = {q: top_ranked[q] for q in keep if q in top_ranked}

    corpus = data["corpus"]
    total_docs = len(corpus)
    doc_ids = _column(corpus, "id")
    if top_ranked:  # reranking: the documents are the kept queries' candidate lists
        needed = {d for q in data["top_ranked"] for d in data["top_ranked"][q]}
        needed |= {d for q in keep for d in relevant[q]}
        if corpus_size is not None:
            logger.warning("%s: corpus_size does not apply to a reranking task (it keeps its candidate lists)", where)
        data["corpus"] = corpus.select([i for i, d in enumerate(doc_ids) if d in needed])
    elif corpus_size is not None:
        corpus_ids = set(doc_ids)  # a hub's qrels may name documents its corpus lacks
        judged = {d for q in keep for d in relevant[q] if d in corpus_ids}
        if corpus_size >= total_docs:
            logger.warning(
                "%s: corpus_size %d >= %d documents: using all %d", where, corpus_size, total_docs, total_docs
            )
        else:
            if corpus_size < len(judged):
                logger.warning(
                    "%s: corpus_size %d < %d judged documents of the kept queries: keeping all judged ones",
                    where, corpus_size, len(judged),
                )
            others = [d for d in doc_ids if d not in judged]
            fill = set(seeded_order(others, seed)[: max(0, corpus_size - len(judged))])
            keep_docs = judged | fill
            data["corpus"] = corpus.select([i for i, d in enumerate(doc_ids) if d in keep_docs])
    return {
        "queries": len(keep),
        "queries_total": total_queries,
        "corpus": len(data["corpus"]),
        "corpus_total": total_docs,
    }


def sample_task_evalscope(task: Any, limits: int | None) -> dict[str, Any]:
    """``eval.limits_mode: evalscope``: EvalScope's own sample, to reproduce its numbers.

    As EvalScope's ModelScope loader cuts a task: a retrieval split keeps its first ``limits`` queries in file
    order, their judgements, and only the documents judged for them (no distractors: retrieval is easier,
    so scores come out higher than rag_eval's seeded sample over the whole corpus); a reranking split keeps
    those queries' candidate lists too. Every other task keeps the first ``limits`` rows of each of its splits
    (training splits included, as EvalScope's ``select(range(limits))`` does). EvalScope applies this to the
    tasks it loads from ModelScope; rag_eval applies it to every task of the run when asked for.
    """
    info: dict[str, Any] = {"limits": limits, "limits_mode": "evalscope"}
    if limits is None:
        return info
    for subset, splits in task.dataset.items():
        for split in list(splits):
            data = splits[split]
            where = f"{task.metadata.name}/{subset}/{split}" if subset != "default" else task.metadata.name
            if isinstance(data, dict) and "corpus" in data:
                if split in task.eval_splits:
                    info.update(_first_queries_judged_corpus(data, limits, where))
            elif hasattr(data, "select") and len(data) > limits:
                splits[split] = data.select(range(limits))
                if split in task.eval_splits:
                    info.update({"rows": limits, "rows_total": len(data)})
    return info


def _first_queries_judged_corpus(data: dict, limits: int, where: str) -> dict[str, Any]:
    queries, relevant, top_ranked = data["queries"], data["relevant_docs"], data.get("top_ranked")
    total_queries, total_docs = len(queries), len(data["corpus"])
    if total_queries > limits:
        data["queries"] = queries.select(range(limits))
    keep = _column(data["queries"], "id")
    data["relevant_docs"] = {q: relevant[q] for q in keep if q in relevant}
    needed = {d for q in data["relevant_docs"] for d in data["relevant_docs"][q]}
    if top_ranked:
        data["top_ranked"] = {q: top_ranked[q] for q in keep if q in top_ranked}
        needed |= {d for q in data["top_ranked"] for d in data["top_ranked"][q]}
    if total_queries > limits:  # EvalScope cuts the corpus only when it cut the queries
        doc_ids = _column(data["corpus"], "id")
        data["corpus"] = data["corpus"].select([i for i, d in enumerate(doc_ids) if d in needed])
    logger.info("%s: limits_mode evalscope: the first %d queries, %d documents (the judged ones)", where,
                len(keep), len(data["corpus"]))
    return {"queries": len(keep), "queries_total": total_queries, "corpus": len(data["corpus"]),
            "corpus_total": total_docs}
