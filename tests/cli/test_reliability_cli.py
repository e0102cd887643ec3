"""Failure isolation and resume after a hard kill, through real ``python -m rag_eval`` processes (the
in-process checks of tests/eval/test_reliability.py use the same helpers)."""

from __future__ import annotations

import csv
import os
import signal
import time

import pytest

from tests.conftest import start_cli
from tests.eval.test_reliability import _minilm, _write_eval

#: the resumed run's sample: pairs / texts / queries per task, and CMRC documents kept (of 848, judged ones among them)
LIMITS, CORPUS = 40, 50


def test_failed_task_is_recorded_and_others_run(tmp_path, data_dir, one_label_classification):
    conf = tmp_path / "conf"
    tasks = [
        {"name": "AtecPairs", "type": "PairClassification", "path": str(data_dir / "pair_classification/atec-zh")},
        {"name": "BrokenClassification", "type": "Classification", "path": str(one_label_classification)},
        {"name": "LcqmcSTS", "type": "STS", "path": str(data_dir / "sts/lcqmc-zh")},
    ]
    _write_eval(conf, "three", tasks, tmp_path / "out", limits=60)
    proc = start_cli(["eval=three", f"hydra.searchpath=[file://{conf}]", f"hydra.run.dir={tmp_path}/h"])
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 1, stderr[-2000:]
    assert "FAILED" in stdout and "BrokenClassification" in stderr
    results = {p.stem for p in (tmp_path / "out").glob("*/*/*.json")} - {"model_meta"}
    assert results == {"AtecPairs", "LcqmcSTS"}
    with (tmp_path / "out" / "summary.csv").open() as fh:
        rows = {r["task"]: r for r in csv.DictReader(fh)}
    assert rows["BrokenClassification"]["status"] == "FAILED"
    assert "ValueError" in rows["BrokenClassification"]["error"] and rows["BrokenClassification"]["score"] == ""
    assert rows["AtecPairs"]["status"] == "ok" and float(rows["AtecPairs"]["score"]) > 0


def test_killed_run_resumes_without_recomputing(tmp_path, data_dir):
    from mteb import TaskResult

    conf = tmp_path / "conf"
    tasks = [
        {"name": "LcqmcSTS", "type": "STS", "path": str(data_dir / "sts/lcqmc-zh")},
        {"name": "AtecPairs", "type": "PairClassification", "path": str(data_dir / "pair_classification/atec-zh")},
        {"name": "CmrcRetrieval", "type": "Retrieval", "path": str(data_dir / "retrieval/cmrc2018-zh")},
        {"name": "ShoppingClustering", "type": "Clustering", "path": str(data_dir / "clustering/online-shopping-zh")},
    ]
    out = tmp_path / "out"
    _write_eval(conf, "resume", tasks, out, limits=LIMITS, corpus_size=CORPUS, overwrite_results=False)
    args = ["eval=resume", f"hydra.searchpath=[file://{conf}]", f"hydra.run.dir={tmp_path}/h"]
    proc = start_cli(args, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(out.glob("*/*/AtecPairs.json")):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    done = {p.stem: p.stat().st_mtime_ns for p in out.glob("*/*/*.json") if p.stem != "model_meta"}
    assert {"LcqmcSTS", "AtecPairs"} <= set(done) and "ShoppingClustering" not in done
    assert not list(out.rglob("*.tmp"))  # no half-written file survives the kill

    proc = start_cli(args)
    stdout, stderr = proc.communicate(timeout=900)
    assert proc.returncode == 0, stderr[-2000:]
    assert "(cached)" in stdout
    files = {p.stem: p for p in out.glob("*/*/*.json") if p.stem != "model_meta"}
    assert set(files) == {t["name"] for t in tasks}
    for name, mtime in done.items():
        assert files[name].stat().st_mtime_ns == mtime, f"{name} was recomputed"

    from rag_eval import run_task

    straight = run_task({"model": {"model_name_or_path": _minilm(), "name": "sentence-transformers/all-MiniLM-L6-v2",
                                   "encode_kwargs": {"batch_size": 64}},
                         "eval": {"tasks": tasks, "limits": LIMITS, "corpus_size": CORPUS,
                                  "output_folder": str(tmp_path / "straight"),
                                  "verbosity": 0}})
    for name, path in files.items():
        resumed = TaskResult.from_disk(path)
        split = next(iter(resumed.scores))
        assert resumed.scores[split][0]["main_score"] == pytest.approx(straight[name][split]["main_score"], abs=1e-6)
