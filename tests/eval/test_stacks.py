"""Retrieval stacks: BM25 and hybrid are mteb's own (equal scores), any retriever feeds any reranker, top_k
sweeps score each pair once, embedding options are recorded and kept apart, and the matrix report.

Real data: CMRC 2018 (zh) and Cranfield (en) from ../shared/data, MiniLM, the ms-marco cross-encoder.
"""

from __future__ import annotations

import csv
import json
from itertools import combinations

import numpy as np
import pytest

from tests.conftest import local_task

pytestmark = [pytest.mark.slow]

CMRC, CRANFIELD = "retrieval/cmrc2018-zh", "retrieval/cranfield-en"
METRICS = ("ndcg_at_10", "map_at_10", "recall_at_100", "mrr_at_10")
#: Cranfield queries and documents kept in the dense / hybrid equality tests (judged ones among the documents)
QUERIES, DOCS = 12, 120


def _close(ours: dict, ref: dict, metrics=METRICS, tol=1e-6) -> None:
    for metric in metrics:
        assert ours[metric] == pytest.approx(ref[metric], abs=tol), metric


def _prepared(entry: dict, limits: int, corpus_size: int | None = None):
    from rag_eval.config import load_config
    from rag_eval.resolve.tasks import resolve_task
    from rag_eval.stages.task_steps import prepare_task

    ev = load_config({"model": {"model_name_or_path": "x"},
                      "eval": {"tasks": [entry], "limits": limits, "corpus_size": corpus_size}}).eval
    task = resolve_task(entry, ev, "t")
    prepare_task(task, ev)
    return task


def _mteb(model, task) -> dict:
    import mteb

    result = mteb.evaluate(model, task, cache=None, show_progress_bar=False, co2_tracker=False,
                           encode_kwargs={"batch_size": 32})
    return result.task_results[0].scores[task.eval_splits[0]][0]


@pytest.mark.parametrize("folder,name,model", [
    (CMRC, "CmrcRetrieval", {"model_type": "bm25", "model_kwargs": {"tokenizer": "char", "stopwords": "zh"}}),
    (CMRC, "CmrcRetrieval", {"model_type": "bm25"}),  # mteb's language rule: characters for Chinese
    (CRANFIELD, "Cranfield", {"model_type": "bm25"}),  # ... stemmed English words for English
])
def test_bm25_equals_mtebs_own(tmp_path, data_dir, folder, name, model):
    import mteb

    from rag_eval import run_task

    entry = local_task(name, "Retrieval", data_dir / folder)
    ours = run_task({"model": model, "eval": {"tasks": [entry], "limits": 60, "output_folder": str(tmp_path),
                                              "verbosity": 0}})
    split = "dev" if folder == CMRC else "test"
    ref = _mteb(mteb.get_model("mteb/baseline-bm25s"), _prepared(entry, 60))
    _close(ours[name][split], ref)
    assert ours[name][split]["ndcg_at_10"] > (0.8 if folder == CMRC else 0.3)


def test_bm25_jieba_words_and_other_task_types_are_skipped(tmp_path, data_dir):
    from rag_eval import run_task

    tasks = [local_task("CmrcRetrieval", "Retrieval", data_dir / CMRC),
             local_task("StsB", "STS", data_dir / "sts/stsb-zh")]
    ev = {"tasks": tasks, "limits": 60, "output_folder": str(tmp_path), "verbosity": 0}
    chars = run_task({"model": {"model_type": "bm25", "model_kwargs": {"tokenizer": "char"}}, "eval": ev})
    words = run_task({"model": {"model_type": "bm25", "model_kwargs": {"tokenizer": "jieba"}}, "eval": ev})
    assert words.ok and set(words.skipped) == {"StsB"} and "StsB" not in words
    assert words["CmrcRetrieval"]["dev"]["ndcg_at_10"] != chars["CmrcRetrieval"]["dev"]["ndcg_at_10"]
    assert {p.parent.parent.name for p in tmp_path.glob("*/*/CmrcRetrieval.json")} == {"bm25s-char", "bm25s-jieba"}


def test_hybrid_equals_mteb_hybridsearch_and_reuses_the_dense_cache(tmp_path, data_dir, minilm_path, minilm_st):
    import mteb
    from mteb.models import SentenceTransformerEncoderWrapper

    from rag_eval import run_task

    entry = local_task("Cranfield", "Retrieval", data_dir / CRANFIELD)
    ev = {"tasks": [entry], "limits": QUERIES, "corpus_size": DOCS, "output_folder": str(tmp_path), "verbosity": 0}
    dense = {"model_name_or_path": minilm_path, "name": "minilm"}
    alone = run_task({"model": dense, "eval": ev})
    chunks = sorted(p.name for p in (tmp_path / ".cache" / "embeddings").rglob("chunk-*.npy"))
    hybrid = {"model_type": "hybrid", "hybrid": {"models": [{"model_type": "bm25"}, dense], "fusion": "rrf"}}
    ours = run_task({"model": hybrid, "eval": ev})
    assert sorted(p.name for p in (tmp_path / ".cache" / "embeddings").rglob("chunk-*.npy")) == chunks  # no encode
    ref_model = mteb.HybridSearch([mteb.get_model("mteb/baseline-bm25s"), SentenceTransformerEncoderWrapper(minilm_st)],
                                  fusion_strategy="rrf")
    ref = _mteb(ref_model, _prepared(entry, QUERIES, DOCS))
    _close(ours["Cranfield"]["test"], ref)
    assert ours["Cranfield"]["test"]["ndcg_at_10"] != alone["Cranfield"]["test"]["ndcg_at_10"]
    rsf = run_task({"model": {**hybrid, "hybrid": {**hybrid["hybrid"], "fusion": "rsf", "weights": [0.3, 0.7]}},
                    "eval": ev})
    assert rsf["Cranfield"]["test"]["ndcg_at_10"] != ours["Cranfield"]["test"]["ndcg_at_10"]
    names = {p.parent.parent.name for p in tmp_path.glob("*/*/Cranfield.json")}
    assert names == {"minilm", "hybrid-rrf-bm25s_minilm", "hybrid-rsf-bm25s_minilm"}  # "+" made path-safe


def test_embedding_options_equal_mteb_and_never_collide(tmp_path, data_dir, minilm_path):
    from mteb.models import CompressionWrapper, SentenceTransformerEncoderWrapper
    from mteb.types import OutputDType
    from sentence_transformers import SentenceTransformer

    from rag_eval import run_task

    entry = local_task("Cranfield", "Retrieval", data_dir / CRANFIELD)
    ev = {"tasks": [entry], "limits": QUERIES, "corpus_size": DOCS, "output_folder": str(tmp_path), "verbosity": 0}
    runs = {}
    for options in ({}, {"embed_dim": 128}, {"output_dtype": "int8"}, {"embed_dim": 128, "search_backend": "faiss"}):
        runs[json.dumps(options)] = run_task({"model": {"model_name_or_path": minilm_path, **options}, "eval": ev})
    folders = sorted(p.parent.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("Cranfield.json"))
    assert len(folders) == 4 and any(f.endswith("experiments/dim128_faiss") for f in folders), folders
    extra = json.loads(next(tmp_path.rglob("experiments/dim128/Cranfield.json")).read_text())["rag_eval"]
    assert extra["retrieval"]["embed_dim"] == 128 and extra["retrieval"]["variant"] == "dim128"
    st = SentenceTransformer(minilm_path, device="cpu", truncate_dim=128)
    _close(runs['{"embed_dim": 128}']["Cranfield"]["test"],
           _mteb(SentenceTransformerEncoderWrapper(st), _prepared(entry, QUERIES, DOCS)))
    # FAISS is exact (flat): the same scores as mteb's own search
    _close(runs['{"embed_dim": 128, "search_backend": "faiss"}']["Cranfield"]["test"],
           runs['{"embed_dim": 128}']["Cranfield"]["test"], tol=1e-5)
    full = SentenceTransformerEncoderWrapper(SentenceTransformer(minilm_path, device="cpu"))
    _close(runs['{"output_dtype": "int8"}']["Cranfield"]["test"],
           _mteb(CompressionWrapper(full, OutputDType.INT8), _prepared(entry, QUERIES, DOCS)))
    assert runs['{"output_dtype": "int8"}']["Cranfield"]["test"] != runs["{}"]["Cranfield"]["test"]


def test_any_retriever_into_a_reranker_with_a_top_k_sweep_and_the_matrix(tmp_path, data_dir, minilm_path,
                                                                          reranker_path):
    from rag_eval import run_task

    entry = local_task("CmrcRetrieval", "Retrieval", data_dir / CMRC)
    queries = 8
    ev = {"tasks": [entry], "limits": queries, "corpus_size": 80, "top_k": [5, 10], "output_folder": str(tmp_path),
          "verbosity": 0}
    reranker = {"model_name_or_path": reranker_path, "is_cross_encoder": True, "name": "ms-marco",
                "max_seq_length": 256}
    bm25 = {"model_type": "bm25", "name": "bm25-zh", "model_kwargs": {"tokenizer": "char", "stopwords": "zh"}}
    swept = run_task({"model": bm25, "reranker": reranker, "eval": ev})
    assert swept.ok, swept.failed
    assert set(swept["CmrcRetrieval"]) == {"stage1", "stage2@top5", "stage2@top10"}
    scores = sorted((tmp_path / ".cache" / "rerank_scores").rglob("chunk-*.json"))
    stored = sum(len(json.loads(p.read_text())) for p in scores)
    assert stored == queries * 10  # each pair of the largest top_k scored once; top 5 came from the cache
    # the same stage 2 as a run with that single top_k
    single = run_task({"model": bm25, "reranker": reranker,
                       "eval": {**ev, "top_k": 5, "output_folder": str(tmp_path / "single")}})
    _close(swept["CmrcRetrieval"]["stage2@top5"]["dev"], single["CmrcRetrieval"]["stage2"]["dev"],
           ("ndcg_at_10", "map_at_10", "mrr_at_10"))
    # a second retriever into the same reranker: the matrix shows both, with NoReranker rows
    run_task({"model": {"model_name_or_path": minilm_path, "name": "minilm"}, "reranker": reranker,
              "eval": {**ev, "top_k": 10}})
    with (tmp_path / "matrix.csv").open(encoding="utf-8") as fh:
        matrix = list(csv.DictReader(fh))
    cells = {(m["retriever"], m["reranker"], m["top_k"]) for m in matrix}
    assert cells == {("bm25-zh", "NoReranker", ""), ("bm25-zh", "ms-marco", "5"), ("bm25-zh", "ms-marco", "10"),
                     ("minilm", "NoReranker", ""), ("minilm", "ms-marco", "10")}
    for m in matrix:
        if m["reranker"] == "NoReranker":
            continue
        k = int(m["top_k"])
        stage2 = swept["CmrcRetrieval"][f"stage2@top{k}"]["dev"] if m["retriever"] == "bm25-zh" else None
        if stage2 is not None:  # with exactly k candidates, stage-2 recall@k is the candidates' recall
            assert float(m["stage1_recall_at_top_k"]) == pytest.approx(stage2[f"recall_at_{k}"], abs=1e-4)
            assert float(m["stage2_score"]) == pytest.approx(stage2["ndcg_at_10"], abs=1e-4)
        assert float(m["gain"]) == pytest.approx(float(m["stage2_score"]) - float(m["stage1_score"]), abs=2e-4)
        assert float(m["stage1_queries_per_s"]) > 0 and float(m["stage2_queries_per_s"]) > 0
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "## Retrieval stacks" in summary and "NoReranker" in summary
    assert (tmp_path / "retrieval_stacks.png").stat().st_size > 5_000


def test_precision_bf16_and_int8_on_both_encoders_are_kept_apart_and_close_to_fp32(tmp_path, data_dir, minilm_path,
                                                                                   reranker_path):
    """model.precision=bf16 (CPU autocast) and int8 (dynamic quantisation) on the bi-encoder and the reranker:
    their own cache folders, experiment folders and result records; scores near the fp32 run's but not the
    same numbers."""
    from rag_eval import run_task
    from rag_eval.errors import ConfigError

    entry = local_task("Cranfield", "Retrieval", data_dir / CRANFIELD)
    ev = {"tasks": [entry], "limits": 6, "corpus_size": 50, "top_k": 5, "output_folder": str(tmp_path),
          "verbosity": 0}
    reranker = {"model_name_or_path": reranker_path, "is_cross_encoder": True, "name": "ms-marco",
                "max_seq_length": 128}  # bf16 autocast is slow on a CPU without AVX512-BF16: short pairs
    # how far each may move: ndcg@10, a vector entry, a reranker logit
    tolerance = {"bf16": (0.05, 0.05, 0.5), "int8": (0.1, 0.3, 3.0)}
    runs = {}
    for precision in ("fp32", *tolerance):
        runs[precision] = run_task({"model": {"model_name_or_path": minilm_path, "precision": precision,
                                              "max_seq_length": 128},
                                    "reranker": {**reranker, "precision": precision}, "eval": ev})
        assert runs[precision].ok, runs[precision].failed
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("Cranfield.json"))
    assert len(files) == 6, files
    for precision, part in (("bf16", "bf16"), ("int8", "qint8")):  # qint8: output_dtype int8 is "int8"
        stage1 = [f for f in files if f.startswith("stage1/") and f"experiments/{part}/" in f]
        stage2 = [f for f in files if f.startswith("stage2/") and f.rsplit("/", 2)[-2].endswith(f"_top5_{part}")]
        assert len(stage1) == 1 and len(stage2) == 1, files
        for rel in stage1 + stage2:
            extra = json.loads((tmp_path / rel).read_text())["rag_eval"]
            assert extra["model_config"]["precision"] == precision and extra["variant"] == part
    folders = {kind: sorted((tmp_path / ".cache" / kind).glob("*/*/*")) for kind in ("embeddings", "rerank_scores")}
    assert {kind: len(f) for kind, f in folders.items()} == {"embeddings": 3, "rerank_scores": 3}  # all apart
    stored = {kind: [] for kind in folders}
    for kind, kind_folders in folders.items():
        for folder in kind_folders:
            keys = [k for f in sorted(folder.glob("chunk-*.json")) for k in json.loads(f.read_text())]
            vecs = np.concatenate([np.load(f) for f in sorted(folder.glob("chunk-*.npy"))])
            stored[kind].append(dict(zip(keys, vecs, strict=True)))
    for precision, (ndcg_tol, _, _) in tolerance.items():
        for stage in ("stage1", "stage2"):
            fp32, other = runs["fp32"]["Cranfield"][stage]["test"], runs[precision]["Cranfield"][stage]["test"]
            assert other["ndcg_at_10"] == pytest.approx(fp32["ndcg_at_10"], abs=ndcg_tol), (precision, stage)
    for kind, tol_index in (("embeddings", 1), ("rerank_scores", 2)):  # really computed: the same keys, other numbers
        by_shape = stored[kind]
        diffs = []
        for i, j in combinations(range(len(by_shape)), 2):
            shared = by_shape[i].keys() & by_shape[j].keys()  # another stage 1 may send the reranker other pairs
            assert len(shared) >= 0.8 * len(by_shape[i]), kind
            diffs.append(max(float(np.abs(by_shape[i][k] - by_shape[j][k]).max()) for k in shared))
        assert all(d > 0 for d in diffs), (kind, diffs)
        assert max(diffs) < 2 * max(t[tol_index] for t in tolerance.values()), (kind, diffs)
    with pytest.raises(ConfigError, match=r"model\[0\]\.precision is fp16, which needs a CUDA device"):
        run_task({"model": {"model_name_or_path": minilm_path, "precision": "fp16", "device": "cpu"}, "eval": ev})
