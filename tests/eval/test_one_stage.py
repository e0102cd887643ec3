"""One-stage evaluation of all six C-MTEB task types on real local data with real MiniLM.

Each score must be sane AND equal to what mteb.evaluate gives with a plain
SentenceTransformer on the same task object (to 1e-6).
"""

from __future__ import annotations

import json
import math

import pytest

LIMITS = 80
CORPUS = 100  # cmrc2018 documents kept of 848 (the sampled queries' judged ones among them)
BATCH = 32

# name, type, folder under ../shared/data, main metric, sane range for MiniLM on this data
LOCAL_TASKS = [
    ("CmrcRetrieval", "Retrieval", "retrieval/cmrc2018-zh", "ndcg_at_10", (0.05, 0.9)),
    ("StsbRerankZh", "Reranking", "reranking/stsb-rerank-zh", "map_at_1000", (0.3, 1.0)),
    ("LcqmcSTS", "STS", "sts/lcqmc-zh", "cosine_spearman", (-0.2, 0.9)),
    ("AtecPairs", "PairClassification", "pair_classification/atec-zh", "max_ap", (0.1, 1.0)),
    ("WaimaiClassification", "Classification", "classification/waimai-zh", "accuracy", (0.4, 1.0)),
    ("OnlineShoppingClustering", "Clustering", "clustering/online-shopping-zh", "v_measure", (0.02, 1.0)),
]


def _task_entries(data_dir):
    return [{"name": n, "type": t, "path": str(data_dir / p)} for n, t, p, _, _ in LOCAL_TASKS]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, data_dir, minilm_path):
    from rag_eval import run_task

    out = tmp_path_factory.mktemp("out")
    cfg = {
        "model": {"model_name_or_path": minilm_path, "name": "minilm", "encode_kwargs": {"batch_size": BATCH}},
        "eval": {"tasks": _task_entries(data_dir), "limits": LIMITS, "corpus_size": CORPUS, "output_folder": str(out),
                 "verbosity": 0},
    }
    return cfg, run_task(cfg), out


@pytest.mark.parametrize("name,ttype,folder,metric,sane", LOCAL_TASKS, ids=[t[1] for t in LOCAL_TASKS])
def test_task_type_matches_mteb(demo_run, data_dir, minilm_st, name, ttype, folder, metric, sane):
    import mteb

    from rag_eval.config import load_config
    from rag_eval.resolve.tasks import resolve_task
    from rag_eval.stages.task_steps import prepare_task

    cfg, scores, _ = demo_run
    assert scores.ok, scores.failed
    split = next(iter(scores[name]))
    ours = scores[name][split]
    assert ours["main_score"] == pytest.approx(ours[metric], abs=0)
    lo, hi = sane
    assert lo <= ours["main_score"] <= hi, (name, ours["main_score"])

    # the same task object, prepared the same way, scored by mteb with a plain SentenceTransformer
    ev = load_config(cfg).eval
    task = resolve_task({"name": name, "type": ttype, "path": str(data_dir / folder)}, ev, "t")
    prepare_task(task, ev)
    ref = mteb.evaluate(minilm_st, task, cache=None, overwrite_strategy="always",
                        encode_kwargs={"batch_size": BATCH}, show_progress_bar=False, co2_tracker=False)
    ref_score = ref.task_results[0].scores[split][0]["main_score"]
    assert math.isfinite(ref_score)
    assert ours["main_score"] == pytest.approx(ref_score, abs=1e-6)


def test_sample_sizes_follow_limits(demo_run):
    _, scores, _ = demo_run
    by_task = {o.task: o for o in scores.outcomes}
    assert by_task["CmrcRetrieval"].sample["queries"] == LIMITS
    assert by_task["CmrcRetrieval"].sample["corpus"] == CORPUS
    assert by_task["CmrcRetrieval"].sample["corpus_total"] == 848
    assert by_task["LcqmcSTS"].sample == {**by_task["LcqmcSTS"].sample, "rows": LIMITS, "rows_total": 12500}
    assert by_task["WaimaiClassification"].sample["rows"] == LIMITS


def test_result_files_are_mteb_format(demo_run):
    from mteb import TaskResult

    _, scores, out = demo_run
    files = sorted(out.glob("minilm/*/*.json"))
    names = {f.stem for f in files if f.name != "model_meta.json"}
    assert names == {t[0] for t in LOCAL_TASKS}
    revision = files[0].parent.name
    assert revision.startswith("local-")
    for f in files:
        if f.name == "model_meta.json":
            continue
        res = TaskResult.from_disk(f)
        split = next(iter(res.scores))
        assert res.scores[split][0]["main_score"] == pytest.approx(scores[f.stem][split]["main_score"], abs=1e-6)
        extra = json.loads(f.read_text())["rag_eval"]
        assert extra["model"] == "minilm" and extra["revision"] == revision
        assert extra["sample"]["seed"] == 42 and extra["sample"]["limits"] == LIMITS


def test_overwrite_false_skips_finished_tasks(demo_run):
    from rag_eval import run_task

    cfg, first, out = demo_run
    files = {f: f.stat().st_mtime_ns for f in out.glob("minilm/*/*.json")}
    cfg = {**cfg, "eval": {**cfg["eval"], "overwrite_results": False}}
    again = run_task(cfg)
    assert {o.status for o in again.outcomes} == {"cached"}
    assert {f: f.stat().st_mtime_ns for f in files} == files
    for task, splits in first.items():
        for split, metrics in splits.items():
            assert again[task][split]["main_score"] == pytest.approx(metrics["main_score"], abs=1e-6)


def test_corpus_chunk_size_changes_memory_steps_not_scores(demo_run, tmp_path, caplog):
    """eval.corpus_chunk_size=CORPUS / 3 searches the sampled CMRC documents in 3 steps (the demo run: one step
    of 10,000) and gives every metric exactly; the vectors come from the demo run's cache."""
    import logging
    import shutil

    from rag_eval import run_task

    cfg, first, out = demo_run
    shutil.copytree(out, tmp_path / "out")
    tasks = [t for t in cfg["eval"]["tasks"] if t["name"] == "CmrcRetrieval"]
    cfg = {**cfg, "eval": {**cfg["eval"], "tasks": tasks, "output_folder": str(tmp_path / "out"),
                           "corpus_chunk_size": math.ceil(CORPUS / 3)}}
    with caplog.at_level(logging.INFO, logger="mteb.models.search_wrappers"):
        again = run_task(cfg)
    searched = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Searched ")]
    assert len(searched) == 1 and searched[0].startswith("Searched 3 corpus chunk(s)"), searched
    assert again.ok and {o.status for o in again.outcomes} == {"ok"}
    for split, metrics in first["CmrcRetrieval"].items():
        assert again["CmrcRetrieval"][split] == pytest.approx(metrics, abs=1e-12, nan_ok=True)
