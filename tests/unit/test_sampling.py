"""``eval.limits`` / ``eval.corpus_size`` / ``eval.seed`` on real data (rag_eval.resolve.sampling).

What is pinned down:

* the sample depends only on the data and the seed: two fresh task objects, a task declared
  from a local folder and the built-in mteb task served by the same folder, and a copy of the
  folder with its rows shuffled all draw the same queries / documents / rows;
* retrieval keeps every judged document of the kept queries AND distractors; ``corpus_size``
  cuts the corpus to exactly that many documents, the judged ones always included;
* on cranfield-en with MiniLM, ``limits`` gives an ndcg@10 close to the full run, while the
  EvalScope way (corpus shrunk to the judged documents) inflates it (tests/eval/test_sampling_scores.py);
* reranking keeps whole candidate lists; STS / pairs keep N rows; classification and
  clustering are stratified by label; the classification training pool is untouched;
* ``limits`` above the data size keeps everything and says so in a warning.

Here no model is loaded: tasks are loaded and sampled as a run would (``prepare_task``).
"""

from __future__ import annotations

import collections
import logging
import random
import shutil
from pathlib import Path

from tests.conftest import local_task

SEED = 42
CMRC = "retrieval/cmrc2018-zh"
CRANFIELD = "retrieval/cranfield-en"
RERANK = "reranking/stsb-rerank-zh"
LCQMC = "sts/lcqmc-zh"
ATEC = "pair_classification/atec-zh"
WAIMAI = "classification/waimai-zh"
SHOPPING = "clustering/online-shopping-zh"

CRANFIELD_DOCS, CRANFIELD_QUERIES = 1400, 225
LIMITED = 100
# Measured with MiniLM on cranfield-en (ndcg@10): full 225 queries 0.3817; 100 queries with
# seed 42 0.3900 (over 200 seeds the 100-query mean is 0.3820, sd 0.022, 99th pct |diff| 0.057);
# the same 100 queries against their 530 judged documents only: 0.5363 (+0.147; at least
# +0.114 for every one of the 200 seeds).
NDCG_TOLERANCE = 0.05
MIN_INFLATION = 0.10


# ---------------------------------------------------------------------------------------------
# helpers


def _ev(limits=None, corpus_size=None, seed=SEED):
    from rag_eval.config import EvalConfig

    return EvalConfig(limits=limits, corpus_size=corpus_size, seed=seed, verbosity=0)


def _prepared(entry: dict, limits=None, corpus_size=None, seed=SEED):
    """A fresh task object for ``entry``, loaded and sampled as a run would: (task, info, split data)."""
    from rag_eval.resolve.tasks import resolve_task
    from rag_eval.stages.task_steps import prepare_task

    ev = _ev(limits, corpus_size, seed)
    task = resolve_task(entry, ev, "test")
    info = prepare_task(task, ev)
    (split,) = task.eval_splits
    return task, info, task.dataset["default"][split]


def _shuffled_copy(src: Path, dst: Path, jsonl: list[str], tsv: list[str] = ()) -> Path:
    """``src`` copied to ``dst`` with the rows of the named files in another order."""
    shutil.copytree(src, dst)
    rng = random.Random(2024)
    for name in jsonl:
        lines = (dst / name).read_text(encoding="utf-8").splitlines(keepends=True)
        rng.shuffle(lines)
        (dst / name).write_text("".join(lines), encoding="utf-8")
    for name in tsv:  # keep the header line first
        header, *rows = (dst / name).read_text(encoding="utf-8").splitlines(keepends=True)
        rng.shuffle(rows)
        (dst / name).write_text(header + "".join(rows), encoding="utf-8")
    original = (src / jsonl[0]).read_text(encoding="utf-8")
    assert (dst / jsonl[0]).read_text(encoding="utf-8") != original  # really reordered
    return dst


def _retrieval_sample(data: dict) -> tuple:
    """What a retrieval sample is, independent of row order."""
    return (
        sorted(data["queries"]["id"]),
        sorted(data["corpus"]["id"]),
        {q: dict(sorted(d.items())) for q, d in sorted(data["relevant_docs"].items())},
    )


def _rows(data, *cols) -> list[tuple]:
    return sorted(zip(*(data[c] for c in cols), strict=True))


# ---------------------------------------------------------------------------------------------
# 1. the same sample from every source, every run, every row order


def test_retrieval_sample_same_across_runs_sources_and_row_order(data_dir, tmp_path):
    src = data_dir / CMRC
    local = local_task("CmrcRetrieval", "Retrieval", src)
    shuffled = _shuffled_copy(src, tmp_path / "cmrc", ["corpus.jsonl", "queries.jsonl"], ["qrels/dev.tsv"])

    _, info, first = _prepared(local, limits=50, corpus_size=300)
    _, _, again = _prepared(local, limits=50, corpus_size=300)  # a fresh task object
    builtin_task, _, builtin = _prepared({"name": "T2Retrieval", "path": str(src)}, limits=50, corpus_size=300)
    _, _, reordered = _prepared(local_task("CmrcRetrieval", "Retrieval", shuffled), limits=50, corpus_size=300)

    assert info == {
        "seed": SEED,
        "limits": 50,
        "corpus_size": 300,
        "queries": 50,
        "queries_total": 3219,
        "corpus": 300,
        "corpus_total": 848,
        "splits": {"dev": {"queries": 50, "queries_total": 3219, "corpus": 300, "corpus_total": 848}},
    }
    assert builtin_task.metadata.name == "T2Retrieval"  # really mteb's task, served by the folder
    expected = _retrieval_sample(first)
    assert len(expected[0]) == 50 and len(expected[1]) == 300
    assert _retrieval_sample(again) == expected
    assert _retrieval_sample(builtin) == expected
    assert _retrieval_sample(reordered) == expected


def test_reranking_sample_independent_of_row_order_and_source(data_dir, tmp_path):
    # local reranking query ids are line numbers: the sample must follow the content instead
    src = data_dir / RERANK
    shuffled = _shuffled_copy(src, tmp_path / "rerank", ["dev.jsonl"])

    def content(data):
        doc = dict(zip(data["corpus"]["id"], data["corpus"]["text"], strict=True))
        query = dict(zip(data["queries"]["id"], data["queries"]["text"], strict=True))
        return sorted(
            (
                query[q],
                tuple(sorted(doc[d] for d in data["top_ranked"][q])),
                tuple(sorted(doc[d] for d in data["relevant_docs"][q])),
            )
            for q in data["queries"]["id"]
        )

    _, info, first = _prepared(local_task("StsbRerank", "Reranking", src), limits=40)
    _, _, reordered = _prepared(local_task("StsbRerank", "Reranking", shuffled), limits=40)
    _, _, builtin = _prepared({"name": "T2Reranking", "path": str(src)}, limits=40)
    assert info["queries"] == 40 and info["queries_total"] == 2701
    assert len(content(first)) == 40
    assert content(reordered) == content(first)
    assert content(builtin) == content(first)


def test_row_samples_same_across_sources_and_row_order(data_dir, tmp_path):
    # STS: local task vs mteb's LCQMC served by the same folder
    _, _, sts = _prepared(local_task("LcqmcSTS", "STS", data_dir / LCQMC), limits=100)
    _, _, sts_builtin = _prepared({"name": "LCQMC", "path": str(data_dir / LCQMC)}, limits=100)
    assert _rows(sts_builtin, "sentence1", "sentence2", "score") == _rows(sts, "sentence1", "sentence2", "score")

    # classification: local task vs mteb's Waimai, and the test file shuffled
    shuffled = _shuffled_copy(data_dir / WAIMAI, tmp_path / "waimai", ["test.jsonl", "train.jsonl"])
    _, _, cls = _prepared(local_task("WaimaiClassification", "Classification", data_dir / WAIMAI), limits=120)
    _, _, cls_builtin = _prepared({"name": "Waimai", "path": str(data_dir / WAIMAI)}, limits=120)
    _, _, cls_reordered = _prepared(local_task("WaimaiClassification", "Classification", shuffled), limits=120)
    expected = _rows(cls, "text", "label")
    assert len(expected) == 120
    assert _rows(cls_builtin, "text", "label") == expected
    assert _rows(cls_reordered, "text", "label") == expected


# ---------------------------------------------------------------------------------------------
# 2. corpus_size: judged documents survive, distractors are there, the seed matters


def test_corpus_size_keeps_judged_docs_and_distractors(data_dir):
    for folder, limits, corpus_size, queries_total in ((CMRC, 50, 300, 3219), (CRANFIELD, 20, 200, 225)):
        _, info, data = _prepared(local_task("T", "Retrieval", data_dir / folder), limits, corpus_size)
        corpus = set(data["corpus"]["id"])
        judged = {d for q in data["queries"]["id"] for d in data["relevant_docs"][q]}
        assert len(data["queries"]) == limits and set(data["relevant_docs"]) == set(data["queries"]["id"])
        assert judged <= corpus  # every judged document of every kept query survives
        assert len(corpus) == corpus_size > len(judged)  # ... and the rest are distractors
        assert info["corpus"] == corpus_size and info["queries_total"] == queries_total
    # cranfield's qrels are graded (1-4): documents of every grade survive
    assert {g for rel in data["relevant_docs"].values() for g in rel.values()} >= {1, 2, 3}


def test_corpus_size_below_judged_count_keeps_all_judged(data_dir, caplog):
    caplog.set_level(logging.WARNING, logger="rag_eval.resolve.sampling")
    _, info, data = _prepared(local_task("T", "Retrieval", data_dir / CRANFIELD), limits=60, corpus_size=100)
    judged = {d for q in data["queries"]["id"] for d in data["relevant_docs"][q]}
    assert len(judged) > 100
    assert set(data["corpus"]["id"]) == judged and info["corpus"] == len(judged)
    assert "keeping all judged ones" in caplog.text


def test_different_seed_draws_a_different_sample(data_dir):
    entry = local_task("CmrcRetrieval", "Retrieval", data_dir / CMRC)
    _, _, a = _prepared(entry, limits=50, corpus_size=300, seed=42)
    _, _, b = _prepared(entry, limits=50, corpus_size=300, seed=7)
    qa, qb = set(a["queries"]["id"]), set(b["queries"]["id"])
    assert len(qa) == len(qb) == 50 and qa != qb
    assert len(qa & qb) < 10  # two draws of 50 from 3,219: nearly disjoint, not a reordering
    judged_a = {d for rel in a["relevant_docs"].values() for d in rel}
    judged_b = {d for rel in b["relevant_docs"].values() for d in rel}
    assert set(a["corpus"]["id"]) - judged_a != set(b["corpus"]["id"]) - judged_b  # other distractors


# ---------------------------------------------------------------------------------------------
# 5. the other task types


def test_reranking_keeps_full_candidate_lists(data_dir):
    entry = local_task("StsbRerank", "Reranking", data_dir / RERANK)
    _, _, whole = _prepared(entry)  # no limits: nothing sampled
    _, info, data = _prepared(entry, limits=40, corpus_size=50)  # corpus_size does not apply here
    kept = data["queries"]["id"]
    assert len(kept) == 40 == info["queries"] and len(whole["queries"]) == 2701
    candidates = set()
    for q in kept:
        assert data["top_ranked"][q] == whole["top_ranked"][q]  # the whole list, in its order
        assert data["relevant_docs"][q] == whole["relevant_docs"][q]
        candidates |= set(whole["top_ranked"][q]) | set(whole["relevant_docs"][q])
    assert set(data["top_ranked"]) == set(kept)
    assert sum(len(data["top_ranked"][q]) for q in kept) >= 40 * 10  # 1 positive + ~10 negatives each
    assert set(data["corpus"]["id"]) == candidates  # every candidate, nothing else
    assert info["corpus"] == len(candidates) < info["corpus_total"]


def test_sts_and_pair_classification_keep_n_rows(data_dir):
    from datasets import Dataset

    from rag_eval.resolve.sampling import sample_task

    _, info, sts = _prepared(local_task("LcqmcSTS", "STS", data_dir / LCQMC), limits=100)
    assert len(sts) == 100 and info["rows"] == 100 and info["rows_total"] == 12500
    task, _, full = _prepared(local_task("AtecPairs", "PairClassification", data_dir / ATEC))
    all_pairs = set(zip(full["sentence1"], full["sentence2"], full["labels"], strict=True))
    _, info, pairs = _prepared(local_task("AtecPairs", "PairClassification", data_dir / ATEC), limits=100)
    picked = _rows(pairs, "sentence1", "sentence2", "labels")
    assert len(picked) == 100 == info["rows"] and info["rows_total"] == 10000
    assert set(picked) <= all_pairs
    assert {label for *_, label in picked} == {0, 1}

    # mteb 1.x pair data (still on the hub): the whole split in one row of lists
    task.dataset["default"]["test"] = Dataset.from_dict({c: [list(full[c])] for c in full.column_names})
    info = sample_task(task, 100, None, SEED)
    one_row = task.dataset["default"]["test"]
    assert len(one_row) == 1 and info["rows"] == 100 and info["rows_total"] == 10000
    assert sorted(zip(*(one_row[0][c] for c in ("sentence1", "sentence2", "labels")), strict=True)) == picked


def test_classification_stratified_and_train_untouched(data_dir):
    entry = local_task("WaimaiClassification", "Classification", data_dir / WAIMAI)
    whole = _prepared(entry)[0].dataset["default"]
    task, info, _ = _prepared(entry, limits=120)
    data = task.dataset["default"]
    full_counts = collections.Counter(whole["test"]["label"])
    assert full_counts == {0: 1592, 1: 806}
    counts = collections.Counter(data["test"]["label"])
    assert sum(counts.values()) == 120 == info["rows"] and info["rows_total"] == 2398
    for label, n in full_counts.items():
        assert abs(counts[label] - 120 * n / 2398) <= 1, (label, counts)
    assert counts == {0: 80, 1: 40}
    assert set(_rows(data["test"], "text", "label")) <= set(_rows(whole["test"], "text", "label"))
    # the few-shot training pool is not sampled
    assert len(data["train"]) == 9589
    assert list(data["train"]["text"]) == list(whole["train"]["text"])


def test_clustering_stratified_v2_and_legacy(data_dir):
    _, info, data = _prepared(local_task("OnlineShoppingClustering", "Clustering", data_dir / SHOPPING), limits=100)
    counts = collections.Counter(data["labels"])
    assert len(data) == 100 == info["rows"] and info["rows_total"] == 3000
    assert len(counts) == 10 and set(counts.values()) == {10}  # 300 per category -> 10 each

    # mteb's legacy CLSClusteringS2S served by the same folder: one row holding every text
    task, info, legacy = _prepared({"name": "CLSClusteringS2S", "path": str(data_dir / SHOPPING)}, limits=100)
    assert len(legacy) == 1 and info["rows"] == 100 and info["rows_total"] == 3000
    assert sorted(zip(legacy[0]["sentences"], legacy[0]["labels"], strict=True)) == _rows(data, "sentences", "labels")


# ---------------------------------------------------------------------------------------------
# 6. limits larger than the data


def test_limits_above_data_size_keep_everything_and_warn(data_dir, caplog):
    caplog.set_level(logging.WARNING, logger="rag_eval.resolve.sampling")

    _, info, data = _prepared(local_task("Cranfield", "Retrieval", data_dir / CRANFIELD), limits=1000, corpus_size=5000)
    assert len(data["queries"]) == CRANFIELD_QUERIES and len(data["corpus"]) == CRANFIELD_DOCS
    assert info == {
        "seed": SEED,
        "limits": 1000,
        "corpus_size": 5000,
        "queries": CRANFIELD_QUERIES,
        "queries_total": CRANFIELD_QUERIES,
        "corpus": CRANFIELD_DOCS,
        "corpus_total": CRANFIELD_DOCS,
        "splits": {"test": {"queries": CRANFIELD_QUERIES, "queries_total": CRANFIELD_QUERIES,
                            "corpus": CRANFIELD_DOCS, "corpus_total": CRANFIELD_DOCS}},
    }
    assert "limits 1000 >= 225 queries: using all 225" in caplog.text
    assert "corpus_size 5000 >= 1400 documents: using all 1400" in caplog.text

    caplog.clear()
    _, info, data = _prepared(local_task("WaimaiClassification", "Classification", data_dir / WAIMAI), limits=5000)
    assert len(data) == 2398 == info["rows"] == info["rows_total"]
    assert "limits 5000 >= 2398 rows: using all 2398" in caplog.text
    assert [r.levelno for r in caplog.records if "using all" in r.getMessage()] == [logging.WARNING]
