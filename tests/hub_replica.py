"""An offline replica of the 31 C-MTEB hub repos of mteb's benchmark ``MTEB(cmn, v1)``.

Test infrastructure: small dataset repos generated on the fly (never committed), laid out in

- a Hugging Face cache exactly as ``huggingface_hub.snapshot_download`` writes it:
  ``<cache>/datasets--<org>--<name>/{blobs/<sha256>, refs/main, snapshots/<mteb's pinned commit>/...}``
  (snapshot files are relative symlinks to the blobs), and
- a ModelScope cache as modelscope >= 1.38 writes it: ``<cache>/datasets/<owner>--<name>/snapshots/master/...``
  (checked against modelscope 1.40: ``snapshot_download(id, repo_type="dataset", local_files_only=True)``
  resolves exactly that folder, and ``<owner>--<name>`` keeps the id's case).

Each repo has the real repo's file names, README front matter (``configs:`` and ``dataset_info:`` blocks as
``push_to_hub`` writes them), config names, splits and column schema, so mteb's own loaders
(``AbsTask.load_data`` + the task's ``dataset_transform``, ``RetrievalDatasetLoader``) read them as they read
the real repos. Rows are real where ../shared/data holds the task's source, small stand-ins elsewhere.

Every :class:`Spec` in :data:`REPLICA` says which parts of its layout were *seen* (a file listing or README of the
real repo) and which are *inferred* (by analogy with a seen repo of the same org and upload tool); see
``Spec.layout``. The layouts by family:

- ``C-MTEB/*`` row tasks (STS, classification), uploaded with ``push_to_hub`` in 2023: one ``default`` config,
  ``data/<split>-00000-of-00001-<16 hex>.parquet``. Seen: LCQMC (all three file names), C-MTEB/STSB,
  QBQTC's split list, waimai's split list. The hex suffixes of unseen repos are made up (stable per file).
- ``C-MTEB/OCNLI`` / ``C-MTEB/CMNLI``: one ``validation`` row holding lists ``sent1``, ``sent2``, ``labels``
  (mteb renames the columns; ``AbsTaskPairClassification._evaluate_subset`` unpacks the single row).
- legacy clustering (``C-MTEB/CLSClustering*``, ``C-MTEB/ThuNewsClustering*``): a ``test`` split with one row
  per clustering set, ``sentences`` / ``labels`` lists (``AbsTaskClusteringLegacy`` scores each row as a set).
- ``mteb/*`` STS re-uploads (PAWSX, STSB): ``push_to_hub`` of ``datasets`` >= 2.16, no hex suffix (inferred).
- ``mteb/*`` retrieval / reranking (mteb 2.x): configs ``corpus``, ``queries``, ``default`` (qrels, in ``data/``)
  and for reranking ``top_ranked``, ``<folder>/<split>-00000-of-00001.parquet``. Seen for T2Retrieval
  (folders ``corpus``, ``data``, ``queries``); the others inferred by analogy.

The legacy retrieval layout (C-MTEB 1.x: one ``default`` config with ``corpus`` and ``queries`` as *splits*,
qrels in a separate ``<repo>-qrels`` repo) is built by :func:`build_legacy_retrieval_cache`; rag_eval must
refuse it in one line.

API: :func:`build_hf_cache`, :func:`build_ms_cache`, :func:`build_legacy_retrieval_cache`,
:func:`build_replica`, :func:`repo_files`, :func:`rows_available`, :func:`items_available`,
:func:`written_rows`, :func:`plain_dataset`, :data:`REPLICA`.
The session fixture ``hub_replica`` (tests/conftest.py) builds both caches once.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

from tests.conftest import DATA, reranking_source

Kind = Literal["sts", "nli", "classification", "clustering", "retrieval", "reranking"]
Item = dict[str, object]

#: rows written per split (small: a task encodes a few hundred texts at most)
N_PAIRS = 24  # STS eval split
N_PAIRS_OTHER = 8  # STS non-eval splits (train, ...)
N_NLI = 24  # pairs in the one NLI row
N_CLASS_TRAIN = 12  # per label (mteb undersamples to samples_per_label=32: all of them)
N_CLASS_EVAL = 6  # per label
N_CLASS_LABELS = 4
N_CLUSTER_SETS = 3
N_CLUSTER_PER_LABEL = 5  # sentences per label per set
N_CLUSTER_LABELS = 4
N_QUERIES = 24  # retrieval
N_DISTRACTORS = 16  # retrieval corpus documents no query is judged against
N_RERANK = 20  # reranking queries
N_NEGATIVES = 5  # candidates per reranking query: its positives and the first N_NEGATIVES negatives


@dataclass(frozen=True)
class Spec:
    """One replicated repo: what is written and where each part of it comes from."""

    task: str  # mteb task name
    kind: Kind
    repo_id: str  # mteb's dataset path (Hugging Face id)
    revision: str  # mteb's pinned commit: the HF snapshot folder
    splits: tuple[str, ...]  # splits the repo holds (row tasks) / the split every config holds
    eval_splits: tuple[str, ...]  # mteb's eval_splits
    source: str  # where the rows come from ("real: ..." or "stand-in: ...")
    layout: str  # "seen: ..." / "inferred: ..." -- the evidence for the file layout
    suffixes: Mapping[str, str] = field(default_factory=dict)  # split -> the real file's hex suffix, where seen
    score_range: tuple[float, float] = (0, 1)  # STS scores (mteb's min_score/max_score)
    score_type: Literal["int64", "float64"] = "int64"

    @property
    def push_to_hub_2023(self) -> bool:
        """C-MTEB's 2023 uploads: ``data/<split>-00000-of-00001-<hex>.parquet``."""
        return self.repo_id.startswith("C-MTEB/")


_CMTEB_NOTE = "inferred: C-MTEB's 2023 push_to_hub shape, as seen for C-MTEB/LCQMC"
_MTEB_RET_NOTE = "inferred: mteb 2.x retrieval shape, as seen for mteb/T2Retrieval"
_MTEB_RR_NOTE = "inferred: mteb 2.x retrieval shape plus a top_ranked config (RetrievalDatasetLoader reads it)"
_LEGACY_CLU_NOTE = "inferred: one row per clustering set, as seen for C-MTEB/CLSClusteringP2P"


def _spec(task, kind, repo_id, revision, splits, eval_splits, source, layout, **kw) -> Spec:
    return Spec(task, kind, repo_id, revision, tuple(splits), tuple(eval_splits), source, layout, **kw)


_TRAIN_VAL_TEST = ("train", "validation", "test")

#: the 31 tasks of ``MTEB(cmn, v1)``; repo ids and revisions are mteb's (tests/unit/test_hub_replica.py checks them)
REPLICA: dict[str, Spec] = {
    s.task: s
    for s in [
        # ---------------------------------------------------------------- retrieval (mteb 2.x repos)
        _spec("T2Retrieval", "retrieval", "mteb/T2Retrieval", "cf778c0ea4168ec5174a34d888d6453e4cde9222",
              ["dev"], ["dev"],
              "real: retrieval/cmrc2018-zh (the first question of each of passages 0-23, 16 other passages)",
              "seen: folders corpus/, data/ (qrels, config default), queries/ with dev-00000-of-00001.parquet "
              "(file listing of mteb/T2Retrieval and its duplicates); column names from RetrievalDatasetLoader"),
        *(_spec(name, "retrieval", f"mteb/{name}", rev, ["dev"], ["dev"],
                "real: retrieval/cmrc2018-zh (the next window of passages)", _MTEB_RET_NOTE)
          for name, rev in [("MMarcoRetrieval", "4940a7b26bf53463cfe3435bb8e201963e9c31ae"),
                            ("DuRetrieval", "313c81b51311893c8fd09ca432f96b841ed0ebb3"),
                            ("CovidRetrieval", "9c6dc4b276bb47c3ff725bbc5ffcafd56dded38b"),
                            ("CmedqaRetrieval", "c476f85bf03d6642ec66bf54b9a551c88108bbb4"),
                            ("EcomRetrieval", "fa705ce5418e91636b1eaeaf43f34c15aa3f5a8a"),
                            ("MedicalRetrieval", "023ae3b2c6b96f583c4ff9b3f9239c93f7885c20"),
                            ("VideoRetrieval", "146a9d5e4fd7a9c182b6b92cccb6a3753994305c")]),
        # ---------------------------------------------------------------- reranking (mteb 2.x repos)
        _spec("T2Reranking", "reranking", "mteb/T2Reranking", "a34fe6bc0dff185af1228e49a0f6fb1de1565627",
              ["dev"], ["dev"],
              "real: reranking/stsb-rerank-zh dev rows 0-19, positives + first 5 negatives (ids as mteb's "
              "conversion makes them)",
              _MTEB_RR_NOTE),
        *(_spec(name, "reranking", f"mteb/{name}", rev, [split], [split],
                f"real: reranking/stsb-rerank-zh dev (the next 20 rows, as split {split})", _MTEB_RR_NOTE)
          for name, rev, split in [("MMarcoReranking", "91c0f9d5cbd4cdc7ecd7039c5c2e57740cb62b00", "dev"),
                                   ("CMedQAv1-reranking", "f77f0345c9b6ac0a2447a3a71483d5b27393cb35", "test"),
                                   ("CMedQAv2-reranking", "01399b6956a4c6bf9edc5b6b90e176aeeb399686", "test")]),
        # ---------------------------------------------------------------- pair classification (one row of lists)
        _spec("Ocnli", "nli", "C-MTEB/OCNLI", "66e76a618a34d6d565d5538088562851e6daa7ec",
              ["validation"], ["validation"], "stand-in: generated Chinese pairs, labels 0/1",
              "seen: README.md + data/validation-00000-of-00001-c03e72abe2b8cd48.parquet at 66e76a6; one row of "
              "lists sent1/sent2/labels (dataset viewer: < 1K rows)",
              suffixes={"validation": "c03e72abe2b8cd48"}),
        _spec("Cmnli", "nli", "C-MTEB/CMNLI", "41bc36f332156f7adc9e38f53777c959b2ae9766",
              ["validation"], ["validation"], "stand-in: generated Chinese pairs, labels 0/1",
              "inferred: same shape as C-MTEB/OCNLI (mteb's Cmnli has the same dataset_transform)"),
        # ---------------------------------------------------------------- legacy clustering
        _spec("CLSClusteringS2S", "clustering", "C-MTEB/CLSClusteringS2S", "e458b3f5414b62b7f9f83499ac1f5497ae2e869f",
              ["test"], ["test"], "stand-in: generated Chinese titles, string labels", _LEGACY_CLU_NOTE),
        _spec("CLSClusteringP2P", "clustering", "C-MTEB/CLSClusteringP2P", "4b6227591c6c1a73bc76b1055f3b7f3588e72476",
              ["test"], ["test"], "stand-in: generated Chinese titles+abstracts, string labels",
              "seen: README.md + data/test-00000-of-00001-4f7ef75ffdb42eff.parquet at 4b62275 (viewer: < 1K rows)",
              suffixes={"test": "4f7ef75ffdb42eff"}),
        _spec("ThuNewsClusteringS2S", "clustering", "C-MTEB/ThuNewsClusteringS2S",
              "8a8b2caeda43f39e13c4bc5bea0f8a667896e10d", ["test"], ["test"],
              "stand-in: generated Chinese news titles, string labels", _LEGACY_CLU_NOTE),
        _spec("ThuNewsClusteringP2P", "clustering", "C-MTEB/ThuNewsClusteringP2P",
              "5798586b105c0434e4f0fe5e767abe619442cf93", ["test"], ["test"],
              "stand-in: generated Chinese news, string labels", _LEGACY_CLU_NOTE),
        # ---------------------------------------------------------------- STS
        _spec("LCQMC", "sts", "C-MTEB/LCQMC", "17f9b096f80380fce5ed12a9be8be7784b337daf", _TRAIN_VAL_TEST, ["test"],
              "real: sts/lcqmc-zh test rows 0-23 as test; rows 24-31 / 32-39 as validation / train (the real "
              "train and validation sets are not in ../shared/data)",
              "seen: README.md (configs default -> data/<split>-*) + data/{train,validation,test} file names",
              suffixes={"test": "cb3f2553acbb3663", "train": "83493a6b9e29a4d0", "validation": "ae04bea7d65ea894"}),
        _spec("PAWSX", "sts", "mteb/PAWSX", "bd129d4230ee0551b5469c566bced8da75abae0a", _TRAIN_VAL_TEST, ["test"],
              "stand-in: generated Chinese pairs, scores 0/1",
              "inferred: mteb re-upload with push_to_hub (datasets >= 2.16: no hex suffix), splits as C-MTEB's"),
        _spec("AFQMC", "sts", "C-MTEB/AFQMC", "b44c3b011063adb25877c13823db83bb193913c4", ["train", "validation"],
              ["validation"], "stand-in: generated Chinese pairs, scores 0/1", _CMTEB_NOTE + "; CLUE's test has "
              "no labels, so train/validation only"),
        _spec("QBQTC", "sts", "C-MTEB/QBQTC", "790b0510dc52b1553e8c49f3d2afb48c0e5c48b7", ["test"], ["test"],
              "stand-in: generated Chinese pairs, scores 0-2",
              "seen: one config default with one split test (dataset viewer); file names inferred from "
              + _CMTEB_NOTE[10:],
              score_range=(0, 2)),
        _spec("ATEC", "sts", "C-MTEB/ATEC", "0f319b1142f28d00e055a6770f3f726ae9b7d865", _TRAIN_VAL_TEST,
              ["validation", "test"],
              "real: pair_classification/atec-zh rows (label 0/1 as score): test 0-23, validation 24-47, train 48-55",
              _CMTEB_NOTE),
        _spec("BQ", "sts", "C-MTEB/BQ", "e3dda5e115e487b39ec7e618c0c6a29137052a55", _TRAIN_VAL_TEST,
              ["validation", "test"], "stand-in: generated Chinese pairs, scores 0/1", _CMTEB_NOTE),
        _spec("STSB", "sts", "mteb/STSB", "e036defee8f190911de6fc825a944b928c8cda53", _TRAIN_VAL_TEST,
              ["validation", "test"],
              "real: sts/stsb-zh test rows 0-23 as test, 24-47 as validation, 48-55 as train",
              "inferred: mteb re-upload of C-MTEB/STSB (seen: data/{train,validation,test}-*-<hex>.parquet), "
              "push_to_hub of datasets >= 2.16: no hex suffix",
              score_range=(0, 5), score_type="float64"),
        # ---------------------------------------------------------------- classification
        _spec("TNews", "classification", "C-MTEB/TNews-classification", "317f262bf1e6126357bbe89e875451e4b0938fe4",
              _TRAIN_VAL_TEST, ["validation"], "stand-in: generated Chinese news titles, 4 int labels",
              _CMTEB_NOTE + "; splits test/train/validation as mteb/TNews (derived from it) lists them"),
        _spec("IFlyTek", "classification", "C-MTEB/IFlyTek-classification",
              "421605374b29664c5fc098418fe20ada9bd55f8a", ["train", "validation"], ["validation"],
              "stand-in: generated Chinese app descriptions, 4 int labels", _CMTEB_NOTE),
        _spec("Waimai", "classification", "C-MTEB/waimai-classification", "339287def212450dcaa9df8c22bf93e9980c7023",
              ["train", "test"], ["test"], "real: classification/waimai-zh (24 train / 12 test rows per label)",
              "seen: splits train/test (parquet-converter's listing); file names inferred from "
              + _CMTEB_NOTE[10:]),
        _spec("OnlineShopping", "classification", "C-MTEB/OnlineShopping-classification",
              "e610f2ebd179a8fda30ae534c3878750a96db120", ["train", "test"], ["test"],
              "real texts: clustering/online-shopping-zh, 4 categories as int labels (the real task's labels "
              "are sentiment, which ../shared/data lacks)", _CMTEB_NOTE),
        _spec("JDReview", "classification", "C-MTEB/JDReview-classification",
              "b7c64bd89eb87f8ded463478346f76731f07bf8b", ["train", "test"], ["test"],
              "stand-in: generated Chinese reviews, 4 int labels", _CMTEB_NOTE),
        _spec("MultilingualSentiment", "classification", "C-MTEB/MultilingualSentiment-classification",
              "46958b007a63fdbf239b7672c25d0bea67b5ea1a", _TRAIN_VAL_TEST, ["validation", "test"],
              "stand-in: generated Chinese reviews, 4 int labels", _CMTEB_NOTE),
    ]
}


# --------------------------------------------------------------------------- rows


_TOPICS = {
    "体育": "比赛 球队 冠军 进球 教练 球员 联赛 训练 赛季 主场 裁判 门将",
    "财经": "股票 市场 银行 投资 利率 基金 经济 企业 收益 价格 贷款 汇率",
    "科技": "手机 芯片 软件 网络 数据 电脑 算法 系统 平台 智能 屏幕 电池",
    "教育": "学校 学生 老师 考试 课程 大学 作业 成绩 教材 招生 校园 毕业",
    "娱乐": "电影 明星 音乐 综艺 演员 导演 歌曲 票房 节目 剧集 舞台 粉丝",
    "健康": "医生 医院 药物 症状 治疗 饮食 睡眠 运动 疾病 检查 营养 体重",
}
_FILLER = "今天 我们 这个 已经 非常 可以 还是 因为 所以 关于 一些 最近 怎么 为什么".split()


def _sentence(rng: random.Random, topic: str, n: int = 4) -> str:
    words = rng.sample(_TOPICS[topic].split(), n) + rng.sample(_FILLER, 2)
    rng.shuffle(words)
    return "".join(words) + rng.choice("。？！")


def _rng(*key: object) -> random.Random:
    return random.Random(hashlib.sha256(repr(key).encode()).hexdigest())


def _standin_pairs(task: str, split: str, n: int, top: int) -> list[tuple[str, str, int]]:
    """Generated pairs scored 0..top: same topic and words (top), same topic (1..top-1), other topic (0)."""
    rng, topics, out = _rng(task, split), list(_TOPICS), []
    for i in range(n):
        t = topics[i % len(topics)]
        s1 = _sentence(rng, t)
        score = i % (top + 1)
        if score == top:
            s2 = s1[:-1] + rng.choice(_FILLER) + "。"
        elif score == 0:
            s2 = _sentence(rng, topics[(i + 1 + rng.randrange(len(topics) - 1)) % len(topics)])
        else:
            s2 = _sentence(rng, t)
        out.append((s1, s2, score))
    return out


def _jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _sts_rows(spec: Spec) -> dict[str, list[Item]]:
    def row(s1, s2, score):
        value = float(score) if spec.score_type == "float64" else int(score)
        return {"sentence1": s1, "sentence2": s2, "score": value}

    real = {"LCQMC": ("sts/lcqmc-zh/test.jsonl", "score"), "STSB": ("sts/stsb-zh/test.jsonl", "score"),
            "ATEC": ("pair_classification/atec-zh/test.jsonl", "label")}
    out: dict[str, list[Item]] = {}
    if spec.task in real:
        path, key = real[spec.task]
        rows = _jsonl(DATA / path)
        # eval splits first (N_PAIRS each), then the others (N_PAIRS_OTHER each), consecutive slices
        start = 0
        for split in sorted(spec.splits, key=lambda s: (s not in spec.eval_splits, -spec.splits.index(s))):
            n = N_PAIRS if split in spec.eval_splits else N_PAIRS_OTHER
            out[split] = [row(r["sentence1"], r["sentence2"], r[key]) for r in rows[start:start + n]]
            start += n
        return {s: out[s] for s in spec.splits}
    top = int(spec.score_range[1])
    for split in spec.splits:
        n = N_PAIRS if split in spec.eval_splits else N_PAIRS_OTHER
        out[split] = [row(*p) for p in _standin_pairs(spec.task, split, n, top)]
    return out


def _nli_rows(spec: Spec) -> dict[str, list[Item]]:
    out = {}
    for split in spec.splits:
        pairs = _standin_pairs(spec.task, split, N_NLI, 1)
        out[split] = [{"sent1": [p[0] for p in pairs], "sent2": [p[1] for p in pairs],
                       "labels": [p[2] for p in pairs]}]
    return out


def _class_rows(spec: Spec) -> dict[str, list[Item]]:
    per_split = {s: N_CLASS_TRAIN if s == "train" else N_CLASS_EVAL for s in spec.splits}
    out: dict[str, list[Item]] = {s: [] for s in spec.splits}
    if spec.task == "Waimai":
        for split, src in (("train", "train"), ("test", "test")):
            rows = _jsonl(DATA / "classification/waimai-zh" / f"{src}.jsonl")
            for label in (0, 1):  # two labels: twice the rows per label, as many rows as the 4-label tasks
                picked = [r for r in rows if r["label"] == label][: per_split[split] * N_CLASS_LABELS // 2]
                out[split] += [{"text": r["text"], "label": label} for r in picked]
        return out
    if spec.task == "OnlineShopping":
        rows = _jsonl(DATA / "clustering/online-shopping-zh/test.jsonl")
        cats = sorted({r["label"] for r in rows})[:N_CLASS_LABELS]
        for label, cat in enumerate(cats):
            texts = [r["text"] for r in rows if r["label"] == cat]
            start = 0
            for split in spec.splits:
                n = per_split[split]
                out[split] += [{"text": t, "label": label} for t in texts[start:start + n]]
                start += n
        return out
    topics = list(_TOPICS)[:N_CLASS_LABELS]
    for split in spec.splits:
        rng = _rng(spec.task, split)
        for label, topic in enumerate(topics):
            out[split] += [{"text": _sentence(rng, topic, 5), "label": label} for _ in range(per_split[split])]
    return out


def _cluster_rows(spec: Spec) -> dict[str, list[Item]]:
    p2p = spec.task.endswith("P2P")
    out = {}
    for split in spec.splits:
        rng, sets = _rng(spec.task, split), []
        for k in range(N_CLUSTER_SETS):
            topics = list(_TOPICS)[k % 3: k % 3 + N_CLUSTER_LABELS]
            items = [(_sentence(rng, t) + (_sentence(rng, t, 6) if p2p else ""), t)
                     for t in topics for _ in range(N_CLUSTER_PER_LABEL)]
            rng.shuffle(items)
            sets.append({"sentences": [s for s, _ in items], "labels": [t for _, t in items]})
        out[split] = sets
    return out


def _retrieval_source(slot: int) -> dict:
    """N_QUERIES cmrc2018 queries, one per passage (slot-th window), their passages and N_DISTRACTORS others."""
    folder = DATA / "retrieval" / "cmrc2018-zh"
    first: dict[str, tuple[str, int]] = {}  # passage -> its first query
    for line in (folder / "qrels" / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, did, score = line.split("\t")
        first.setdefault(did, (qid, int(score)))
    chosen = list(first.items())[slot * N_QUERIES:(slot + 1) * N_QUERIES]
    qrels = {qid: {did: score} for did, (qid, score) in chosen}
    all_queries = {q["_id"]: q["text"] for q in _jsonl(folder / "queries.jsonl")}
    relevant = {did for did, _ in chosen}
    docs = _jsonl(folder / "corpus.jsonl")
    others = [d for d in reversed(docs) if d["_id"] not in relevant]  # from the far end of the corpus
    distractors = {d["_id"] for d in others[slot * N_DISTRACTORS:(slot + 1) * N_DISTRACTORS]}
    corpus = {d["_id"]: {"title": d["title"], "text": d["text"]} for d in docs
              if d["_id"] in relevant or d["_id"] in distractors}
    return {"queries": {q: all_queries[q] for q in qrels}, "corpus": corpus, "qrels": qrels, "top_ranked": None}


def _reranking_source_for(slot: int, split: str) -> dict:
    rows = [r for r in _jsonl(DATA / "reranking" / "stsb-rerank-zh" / "dev.jsonl") if r["positive"] and r["negative"]]
    rows = [{**r, "negative": r["negative"][:N_NEGATIVES]} for r in rows[slot * N_RERANK:(slot + 1) * N_RERANK]]
    return reranking_source(rows, split)


def _slot(spec: Spec) -> int:
    return [s.task for s in REPLICA.values() if s.kind == spec.kind].index(spec.task)


def _ir_configs(spec: Spec) -> dict[str, dict[str, list[Item]]]:
    split = spec.splits[0]
    src = _retrieval_source(_slot(spec)) if spec.kind == "retrieval" else _reranking_source_for(_slot(spec), split)
    configs = {
        "corpus": {split: [{"id": d, "title": c["title"], "text": c["text"]} for d, c in src["corpus"].items()]},
        "queries": {split: [{"id": q, "text": t} for q, t in src["queries"].items()]},
        "default": {split: [{"query-id": q, "corpus-id": d, "score": s}
                            for q, docs in src["qrels"].items() for d, s in docs.items()]},
    }
    if src["top_ranked"] is not None:
        configs["top_ranked"] = {split: [{"query-id": q, "corpus-ids": ids} for q, ids in src["top_ranked"].items()]}
    return configs


@cache
def written_rows(task: str) -> dict[str, dict[str, list[Item]]]:
    """``{config: {split: rows}}`` exactly as written to the task's parquet files."""
    spec = REPLICA[task]
    build = {"sts": _sts_rows, "nli": _nli_rows, "classification": _class_rows, "clustering": _cluster_rows}
    if spec.kind in build:
        return {"default": build[spec.kind](spec)}
    return _ir_configs(spec)


def rows_available(task: str, split: str) -> int:
    """Rows of ``split`` in mteb's loaded dataset: parquet rows for row tasks (1 for Ocnli/Cmnli, one row per
    clustering set for the legacy clustering tasks), queries with qrels for retrieval / reranking."""
    rows = written_rows(task)
    if REPLICA[task].kind in ("retrieval", "reranking"):
        return len(rows["queries"][split])
    return len(rows["default"][split])


def items_available(task: str, split: str) -> int:
    """What mteb scores in ``split``: pairs (STS, NLI unpacked), texts (classification), sentences (clustering,
    all sets), queries (retrieval, reranking)."""
    spec, rows = REPLICA[task], written_rows(task)
    if spec.kind == "nli":
        return sum(len(r["labels"]) for r in rows["default"][split])
    if spec.kind == "clustering":
        return sum(len(r["sentences"]) for r in rows["default"][split])
    return rows_available(task, split)


# --------------------------------------------------------------------------- files


def _suffix(spec: Spec, split: str) -> str:
    """The hex suffix push_to_hub (datasets < 2.16) gave a file: the real one where seen, else a stable stand-in."""
    return spec.suffixes.get(split) or hashlib.sha256(f"{spec.repo_id}/{split}".encode()).hexdigest()[:16]


def _folder(config: str) -> str:
    return "data" if config == "default" else config


def _file_name(spec: Spec, config: str, split: str) -> str:
    tail = f"-{_suffix(spec, split)}" if spec.push_to_hub_2023 else ""
    return f"{_folder(config)}/{split}-00000-of-00001{tail}.parquet"


def _features(spec: Spec, config: str):
    from datasets import Features, List, Value

    string, int64 = Value("string"), Value("int64")
    if spec.kind == "sts":
        return Features(sentence1=string, sentence2=string, score=Value(spec.score_type))
    if spec.kind == "nli":
        return Features(sent1=List(string), sent2=List(string), labels=List(int64))
    if spec.kind == "classification":
        return Features(text=string, label=int64)
    if spec.kind == "clustering":
        return Features(sentences=List(string), labels=List(string))
    return {
        "corpus": Features(id=string, title=string, text=string),
        "queries": Features(id=string, text=string),
        "default": Features({"query-id": string, "corpus-id": string, "score": int64}),
        "top_ranked": Features({"query-id": string, "corpus-ids": List(string)}),
    }[config]


def _yaml_features(spec: Spec, features) -> list[str]:
    """``dataset_info.features`` as push_to_hub wrote it: ``sequence:`` in 2023 (C-MTEB), ``list:`` since datasets 4."""
    lines = []
    for name, feat in features.items():
        lines.append(f"  - name: {name}")
        if hasattr(feat, "feature"):
            key = "sequence" if spec.push_to_hub_2023 else "list"
            lines.append(f"    {key}: {feat.feature.dtype}")
        else:
            lines.append(f"    dtype: {feat.dtype}")
    return lines


def _parquet(rows: list[Item], features) -> tuple[bytes, int]:
    import pyarrow.parquet as pq
    from datasets import Dataset

    table = Dataset.from_list(rows, features=features).data.table  # schema metadata: the HF features
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue(), table.nbytes


def _readme(spec: Spec, infos: dict[str, dict[str, tuple[int, int]]], features: dict) -> str:
    """README.md front matter as push_to_hub writes it: ``dataset_info`` (features, splits) and ``configs``."""
    lines = ["---", "dataset_info:"]
    for config, splits in infos.items():
        if len(infos) > 1:  # several configs: a list of infos, each naming its config
            lines.append(f"- config_name: {config}")
        lines += ["  features:", *_yaml_features(spec, features[config]), "  splits:"]
        for split, (nbytes, n) in splits.items():
            lines += [f"  - name: {split}", f"    num_bytes: {nbytes}", f"    num_examples: {n}"]
        total = sum(b for b, _ in splits.values())
        lines += [f"  download_size: {total}", f"  dataset_size: {total}"]
    lines.append("configs:")
    for config, splits in infos.items():
        lines += [f"- config_name: {config}", "  data_files:"]
        for split in splits:
            lines += [f"  - split: {split}", f"    path: {_folder(config)}/{split}-*"]
    lines += ["---", ""]
    if spec.push_to_hub_2023:
        lines += [f'# Dataset Card for "{spec.repo_id.split("/")[1]}"', "",
                  "[More Information needed](https://github.com/huggingface/datasets/blob/main/CONTRIBUTING.md"
                  "#how-to-contribute-to-datasetcardmd)", ""]
    else:
        lines += [f"# {spec.task}", "", "Offline test replica of an mteb task repo (tests/hub_replica.py).", ""]
    return "\n".join(lines)


_GITATTRIBUTES = "".join(f"*.{ext} filter=lfs diff=lfs merge=lfs -text\n"
                         for ext in ("7z", "arrow", "bin", "gz", "parquet", "pt", "safetensors", "zip", "zst"))


@cache
def repo_files(task: str) -> dict[str, bytes]:
    """The task's repo as ``{relative path: bytes}`` (README.md, .gitattributes, parquet files)."""
    spec = REPLICA[task]
    files: dict[str, bytes] = {".gitattributes": _GITATTRIBUTES.encode()}
    infos: dict[str, dict[str, tuple[int, int]]] = {}
    features = {}
    for config, splits in written_rows(task).items():
        features[config] = _features(spec, config)
        infos[config] = {}
        for split, rows in splits.items():
            data, nbytes = _parquet(rows, features[config])
            files[_file_name(spec, config, split)] = data
            infos[config][split] = (nbytes, len(rows))
    files["README.md"] = _readme(spec, infos, features).encode()
    return files


def plain_dataset(task) -> dict:
    """A loaded task's ``task.dataset`` as plain Python, rows in the order mteb produced them: row tasks
    ``{split: rows}``, retrieval / reranking ``{(subset, split): {corpus, queries, relevant_docs, top_ranked}}``."""
    out = {}
    for subset, splits in task.dataset.items():
        if hasattr(splits, "to_list"):  # mteb's own shape of a monolingual row task: {split: rows}
            out[subset] = splits.to_list()
            continue
        if "corpus" not in next(iter(splits.values()), {}):  # rag_eval's settled shape: {"default": {split: rows}}
            out.update({split: rows.to_list() for split, rows in splits.items()})
            continue
        for split, data in splits.items():
            out[(subset, split)] = {
                "corpus": data["corpus"].to_list(),
                "queries": data["queries"].to_list(),
                "relevant_docs": {q: dict(d) for q, d in data["relevant_docs"].items()},
                "top_ranked": None
                if data["top_ranked"] is None
                else {q: list(v) for q, v in data["top_ranked"].items()},
            }
    return out


# --------------------------------------------------------------------------- caches


def lay_out_hf_files(cache: Path, repo_id: str, files: Mapping[str, bytes], commit: str,
                     repo_type: str = "model") -> Path:
    """What huggingface_hub writes: blobs/<sha256>, snapshots/<commit>/<file> -> ../../blobs/<sha256>, refs/main."""
    repo = Path(cache) / f"{repo_type}s--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    for rel, data in sorted(files.items()):
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        if not blob.exists():
            blob.write_bytes(data)
        target = snapshot / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            target.symlink_to(os.path.relpath(blob, target.parent))
        except OSError:  # no symlinks (Windows without dev mode): huggingface_hub copies
            shutil.copyfile(blob, target)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)  # no trailing newline, as the library writes
    return snapshot


def lay_out_ms_files(cache: Path, dataset_id: str, files: Mapping[str, bytes]) -> Path:
    """What modelscope (>= 1.38) writes for a dataset: ``datasets/<owner>--<name>/snapshots/master/<files>``."""
    folder = Path(cache) / "datasets" / dataset_id.replace("/", "--") / "snapshots" / "master"
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


def _tasks(tasks: Iterable[str] | None) -> list[str]:
    names = list(REPLICA) if tasks is None else list(tasks)
    unknown = [t for t in names if t not in REPLICA]
    if unknown:
        raise KeyError(f"not in the replica: {unknown}")
    return names


def build_hf_cache(cache_root: Path, tasks: Iterable[str] | None = None) -> dict[str, Path]:
    """Lay out the tasks' repos (default: all 31) in a Hugging Face hub cache -> ``{task: snapshot folder}``."""
    return {t: lay_out_hf_files(cache_root, REPLICA[t].repo_id, repo_files(t), REPLICA[t].revision, "dataset")
            for t in _tasks(tasks)}


def build_ms_cache(cache_root: Path, tasks: Iterable[str] | None = None,
                   ms_ids: Mapping[str, str] | Callable[[str], str] | None = None) -> dict[str, Path]:
    """Lay out the tasks' repos in a ModelScope cache -> ``{task: snapshot folder}``.

    ``ms_ids``: the ModelScope id per task, a ``{task: id}`` mapping (tasks not in it keep mteb's id) or a
    function of mteb's repo id (e.g. ``lambda r: "mteb/" + r.split("/")[1]``); default: mteb's HF repo id.
    """
    out = {}
    for t in _tasks(tasks):
        repo_id = REPLICA[t].repo_id
        if callable(ms_ids):
            ms_id = ms_ids(repo_id)
        else:
            ms_id = (ms_ids or {}).get(t, repo_id)
        out[t] = lay_out_ms_files(cache_root, ms_id, repo_files(t))
    return out


@dataclass(frozen=True)
class HubReplica:
    """Both caches of one build: point ``HF_HUB_CACHE`` / ``MODELSCOPE_CACHE`` at ``hf_cache`` / ``ms_cache``."""

    hf_cache: Path
    ms_cache: Path
    hf: dict[str, Path]  # task -> its HF snapshot folder
    ms: dict[str, Path]  # task -> its ModelScope snapshot folder


def build_replica(root: Path, tasks: Iterable[str] | None = None,
                  ms_ids: Mapping[str, str] | Callable[[str], str] | None = None) -> HubReplica:
    """Both caches under ``root`` (``root/hf``, ``root/ms``)."""
    root = Path(root)
    return HubReplica(root / "hf", root / "ms", build_hf_cache(root / "hf", tasks),
                      build_ms_cache(root / "ms", tasks, ms_ids))


def legacy_retrieval_files(task: str = "T2Retrieval") -> tuple[dict[str, bytes], dict[str, bytes]]:
    """A C-MTEB 1.x retrieval repo and its ``-qrels`` repo: corpus and queries as *splits* of one ``default``
    config (columns ``id``, ``text``), qrels (``qid``, ``pid``, ``score``) in the other repo's ``dev`` split."""
    from datasets import Features, Value

    spec = REPLICA[task]
    if spec.kind != "retrieval":
        raise ValueError(f"{task} is not a retrieval task")
    rows = written_rows(task)
    split = spec.splits[0]
    main_rows = {"corpus": [{"id": r["id"], "text": r["text"]} for r in rows["corpus"][split]],
                 "queries": [{"id": r["id"], "text": r["text"]} for r in rows["queries"][split]]}
    qrels_rows = [{"qid": r["query-id"], "pid": r["corpus-id"], "score": r["score"]} for r in rows["default"][split]]
    legacy = Spec(task, "retrieval", "C-MTEB/" + spec.repo_id.split("/")[1], spec.revision, ("corpus", "queries"),
                  (), spec.source, "inferred: C-MTEB 1.x retrieval shape")

    def repo(config_rows: dict[str, list[Item]], features) -> dict[str, bytes]:
        files = {".gitattributes": _GITATTRIBUTES.encode()}
        info = {}
        for s, rs in config_rows.items():
            data, nbytes = _parquet(rs, features)
            files[_file_name(legacy, "default", s)] = data
            info[s] = (nbytes, len(rs))
        files["README.md"] = _readme(legacy, {"default": info}, {"default": features}).encode()
        return files

    main = repo(main_rows, Features(id=Value("string"), text=Value("string")))
    qrels = repo({split: qrels_rows}, Features(qid=Value("string"), pid=Value("string"), score=Value("int64")))
    return main, qrels


def build_legacy_retrieval_cache(cache_root: Path, hub: Literal["huggingface", "modelscope"],
                                 task: str = "T2Retrieval", dataset_id: str | None = None) -> Path:
    """The legacy layout under the id rag_eval looks up (mteb's id, or ``dataset_id``), plus ``<id>-qrels``."""
    main, qrels = legacy_retrieval_files(task)
    spec = REPLICA[task]
    repo_id = dataset_id or spec.repo_id
    if hub == "huggingface":
        lay_out_hf_files(cache_root, repo_id + "-qrels", qrels, spec.revision, "dataset")
        return lay_out_hf_files(cache_root, repo_id, main, spec.revision, "dataset")
    lay_out_ms_files(cache_root, repo_id + "-qrels", qrels)
    return lay_out_ms_files(cache_root, repo_id, main)
