"""A joblib sweep (hydra-joblib-launcher, two jobs in parallel) into one output folder, then the report CLI
over it (the folder-wide reports themselves: tests/eval/test_report.py)."""

from __future__ import annotations

import pytest

from tests.conftest import local_task as _task
from tests.conftest import run_cli
from tests.eval.test_report import _csv


def test_joblib_sweep_shares_one_output_folder(tmp_path, data_dir):
    """Two jobs in parallel (hydra-joblib-launcher) -> one results tree -> one summary."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    from omegaconf import OmegaConf

    conf, out = tmp_path / "conf", tmp_path / "out"
    (conf / "eval").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create({
        "defaults": ["base", "_self_"], "tasks": [_task("LcqmcSTS", "STS", data_dir / "sts/lcqmc-zh")],
        "output_folder": str(out), "verbosity": 1, "limits": 30}), conf / "eval" / "tiny.yaml")
    # each job names its model after its limits, so the two jobs' result files do not collide
    args = ["-m", "eval=tiny", f"hydra.searchpath=[file://{conf}]", "eval.limits=30,40",
            "model.name=minilm-l${eval.limits}", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    proc = run_cli(*args, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in proc.stderr + proc.stdout
    files = sorted(p.relative_to(out).parts[0] for p in out.glob("*/*/LcqmcSTS.json"))
    assert files == ["minilm-l30", "minilm-l40"]
    assert len(list((out / ".hydra" / "multirun").glob("*/[01]"))) == 2

    proc = run_cli(str(out), "-q", module="rag_eval.report", timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = _csv(out / "summary.csv")
    assert sorted((r["model"], r["sample"]) for r in rows) == [("minilm-l30", "30/12500 rows"),
                                                               ("minilm-l40", "40/12500 rows")]
    assert {r["label"] for r in _csv(out / "averages.csv")} == {"minilm-l30", "minilm-l40"}
