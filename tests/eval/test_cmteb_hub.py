"""The path users take: all 31 C-MTEB tasks of ``eval=cmteb`` by name, from each hub, to a score.

The hubs are the offline replica of tests/hub_replica.py (the real repos' file names, README
``configs:`` blocks, splits and columns, laid out as ``huggingface_hub`` and ``modelscope`` write
their caches). The run is the CLI's own config (``eval=cmteb`` composed by Hydra) through
``run_task``, with ``limits``; both hubs write into one output folder, so the second run reads
every vector from the embedding cache (the same data, the same texts) and must give the same scores.

Asserted for each task and hub: a finite main score, the rows drawn per split equal to ``limits``
(or all, where the replica holds fewer), the provenance (hub, id and revision that served the data,
library versions). One STS task is compared with ``mteb.evaluate`` on the same rows; the CLI runs the
dry run over all 31 and a real run of the STS group.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.conftest import cli_env, compose, run_cli

LIMITS = 8
HUBS = ("huggingface", "modelscope")
pytestmark = pytest.mark.slow


def _expected_drawn(task: str, split: str, limits: int) -> dict[str, int]:
    """What the sample of ``split`` must hold, from the rows the replica wrote."""
    from tests.hub_replica import REPLICA, items_available, rows_available, written_rows

    kind = REPLICA[task].kind
    if kind in ("retrieval", "reranking"):
        return {"queries": min(limits, rows_available(task, split))}
    if kind == "clustering":  # C-MTEB's legacy sets: limits texts per set (each set is clustered on its own)
        sets = written_rows(task)["default"][split]
        return {"rows": sum(min(limits, len(s["sentences"])) for s in sets),
                "rows_total": sum(len(s["sentences"]) for s in sets)}
    total = items_available(task, split)
    return {"rows": min(limits, total), "rows_total": total}


def _results(folder: Path) -> dict[str, dict]:
    """{task: result JSON} of the result files under ``folder``, each with its per-item data (``_per_item``)."""
    from rag_eval.results.layout import per_item_path

    out = {}
    for path in folder.rglob("*.json"):
        if path.parent.name in (".runs", "per_item") or ".cache" in path.parts:
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        if "task_name" in data:
            items = per_item_path(path)
            data["_per_item"] = json.loads(items.read_text(encoding="utf-8")) if items.is_file() else None
            out[data["task_name"]] = data
    return out


@pytest.fixture(scope="module")
def cmteb_runs(hub_replica, minilm_path, tmp_path_factory):
    """``eval=cmteb`` from each hub into one output folder: {hub: (RunScores, {task: result JSON})}."""
    import datasets.config as dconfig
    import huggingface_hub.constants as hf_constants

    from rag_eval import run_task
    from rag_eval.resolve import hub as hub_mod

    out = tmp_path_factory.mktemp("cmteb-hub")
    runs = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAG_EVAL_OFFLINE", "1")
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_DATASETS_OFFLINE", "1")
        mp.setenv("HF_HUB_CACHE", str(hub_replica.hf_cache))
        mp.setenv("MODELSCOPE_CACHE", str(hub_replica.ms_cache))
        mp.setenv("MODELSCOPE_HOME", str(out / "ms-home"))
        mp.setattr(hf_constants, "HF_HUB_OFFLINE", True)
        mp.setattr(dconfig, "HF_HUB_OFFLINE", True)
        mp.setattr(dconfig, "HF_DATASETS_CACHE", out / "datasets-cache")
        mp.setattr(hub_mod, "_hub_reachable", lambda h: pytest.fail(f"network probe of {h}"))
        for hub in HUBS:
            cfg = compose("model=minilm", "eval=cmteb", f"eval.hub={hub}", f"eval.limits={LIMITS}",
                          f"eval.output_folder={out / 'results'}", "eval.overwrite_results=true",
                          "eval.verbosity=0", f"model.model_name_or_path={minilm_path}",
                          "model.max_seq_length=128")  # the retrieval passages cost half the attention
            scores = run_task(cfg)
            runs[hub] = (scores, _results(out / "results"))
    return runs


@pytest.mark.parametrize("hub", HUBS)
def test_all_31_tasks_score_from_the_hub(cmteb_runs, hub):
    from tests.hub_replica import REPLICA

    scores, results = cmteb_runs[hub]
    assert not scores.failed, scores.failed
    assert len(REPLICA) == 31 and set(scores) == set(REPLICA) == set(results)
    for task, result in results.items():
        for split, entries in result["scores"].items():
            assert math.isfinite(entries[0]["main_score"]), (task, split)


@pytest.mark.parametrize("hub", HUBS)
def test_limits_hold_on_every_task_type(cmteb_runs, hub):
    import mteb

    from tests.hub_replica import REPLICA

    _, results = cmteb_runs[hub]
    splits = {t.metadata.name: set(t.eval_splits) for t in mteb.get_benchmark("MTEB(cmn, v1)").tasks}
    types = set()
    for task, result in results.items():
        sample = result["rag_eval"]["sample"]
        assert sample["limits"] == LIMITS and sample["seed"] == 42
        assert set(sample["splits"]) == splits[task] <= set(REPLICA[task].eval_splits), task  # the benchmark's
        for split, drawn in sample["splits"].items():
            expected = _expected_drawn(task, split, LIMITS)
            assert {k: drawn[k] for k in expected} == expected, (task, split, drawn)
        types.add(result["rag_eval"]["task_type"])
    assert types == {"Retrieval", "Reranking", "STS", "PairClassification", "Classification", "Clustering"}


@pytest.mark.parametrize("hub", HUBS)
def test_provenance_names_what_served_the_data(cmteb_runs, hub):
    import mteb
    import sentence_transformers
    import torch

    from tests.hub_replica import REPLICA

    _, results = cmteb_runs[hub]
    for task, result in results.items():
        spec, data = REPLICA[task], result["rag_eval"]["data"]
        assert data["hub"] == hub and data["repo_id"] == spec.repo_id == data["dataset_id"], (task, data)
        assert data["mteb_revision"] == spec.revision == result["dataset_revision"]
        if hub == "huggingface":
            assert data["revision"] == spec.revision and data["pinned"] is True
        else:  # ModelScope's default branch: not mteb's pinned commit, and the result says so
            assert data["revision"] == "master" and data["pinned"] is False
        versions = result["rag_eval"]["versions"]
        assert versions["mteb"] == mteb.__version__ and versions["torch"] == torch.__version__
        assert versions["sentence-transformers"] == sentence_transformers.__version__
        applied = result["rag_eval"]["applied"]
        assert applied["dtype"] == "float32" and applied["max_seq_length"] == 128  # as applied, not the config


def test_both_hubs_give_the_same_scores(cmteb_runs):
    (hf, _), (ms, _) = cmteb_runs["huggingface"], cmteb_runs["modelscope"]
    for task in hf:
        for split in hf[task]:
            assert ms[task][split]["main_score"] == pytest.approx(hf[task][split]["main_score"], abs=1e-9), task


def test_sts_task_from_the_hub_equals_mteb_evaluate(cmteb_runs, hub_replica, minilm_st):
    """LCQMC as served by the HF replica, on the rows rag_eval drew (read back from its per-item file by the pairs'
    ids): mteb's own evaluate of a plain SentenceTransformer gives the same Spearman to 1e-6."""
    import mteb
    from datasets import Dataset
    from mteb.models import SentenceTransformerEncoderWrapper

    from rag_eval.task_types.pairs import pair_ids

    _, results = cmteb_runs["huggingface"]
    result = results["LCQMC"]
    task = mteb.get_task("LCQMC")
    ref_cls = type(task)
    meta = ref_cls.metadata.model_copy(update={"dataset": {**ref_cls.metadata.dataset,
                                                           "path": str(hub_replica.hf["LCQMC"])}})
    reference = type("RefLCQMC", (ref_cls,), {"metadata": meta})()
    reference.load_data()
    full = reference.dataset["test"]
    drawn_ids = set(result["_per_item"]["splits"]["test"]["default"]["ids"])
    ids = pair_ids(list(full["sentence1"]), list(full["sentence2"]))
    rows = [i for i, pid in enumerate(ids) if pid in drawn_ids]
    assert len(rows) == LIMITS
    reference.dataset = {"test": Dataset.from_dict(full.select(rows).to_dict())}
    got = mteb.evaluate(SentenceTransformerEncoderWrapper(minilm_st), reference, cache=None,
                        overwrite_strategy="always", raise_error=True, show_progress_bar=False,
                        encode_kwargs={"batch_size": 32, "show_progress_bar": False}, co2_tracker=False)
    expected = got.task_results[0].scores["test"][0]["main_score"]
    assert result["scores"]["test"][0]["main_score"] == pytest.approx(expected, abs=1e-6)


@pytest.mark.subprocess
def test_cli_dry_run_plans_all_31_tasks_and_a_real_sts_run(hub_replica, minilm_path, tmp_path):
    env = cli_env(HF_HUB_CACHE=str(hub_replica.hf_cache), MODELSCOPE_CACHE=str(hub_replica.ms_cache),
                  HF_DATASETS_OFFLINE="1", MODELSCOPE_HOME=str(tmp_path / "ms-home"))
    out = tmp_path / "out"
    dry = run_cli("eval=cmteb", "eval.dry_run=true", f"eval.limits={LIMITS}", "eval.hub=huggingface",
                  f"eval.output_folder={out}", f"model.model_name_or_path={minilm_path}", env=env)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "dry run: 31 of 31 tasks ready" in dry.stdout and "no model loaded, nothing written" in dry.stdout
    assert not (out / "summary.md").exists()
    real = run_cli("eval=cmteb_sts", f"eval.limits={LIMITS}", "eval.hub=modelscope", f"eval.output_folder={out}",
                   f"model.model_name_or_path={minilm_path}", env=env)
    assert real.returncode == 0, real.stderr[-2000:]
    results = _results(out)
    assert len(results) == 7 and all(r["rag_eval"]["data"]["hub"] == "modelscope" for r in results.values())


def test_modelscope_mteb_ids_serve_cmteb_tasks_and_are_recorded(monkeypatch, tmp_path):
    """EvalScope >= 1.9 lists C-MTEB's sets under ModelScope ``mteb/`` (``mteb/LCQMC``): a cache holding only that
    id serves the task, second in the documented order, and the provenance names it."""
    import mteb

    from rag_eval.resolve import task_data as td
    from tests.conftest import isolate_hubs
    from tests.hub_replica import build_ms_cache

    isolate_hubs(monkeypatch, tmp_path, offline_flags=True)
    cache = tmp_path / "ms"
    build_ms_cache(cache, ["LCQMC", "Ocnli"], ms_ids=lambda repo: "mteb/" + repo.split("/")[1])
    monkeypatch.setenv("MODELSCOPE_CACHE", str(cache))
    for name, ms_id in (("LCQMC", "mteb/LCQMC"), ("Ocnli", "mteb/OCNLI")):
        task = mteb.get_task(name)
        source = td.load_builtin_data(task, "modelscope")
        assert source.provenance()["dataset_id"] == ms_id and source.provenance()["repo_id"] != ms_id
        assert task.data_loaded and "default" in task.dataset  # the settled shape
