"""Folder-wide reports: collect_results, C-MTEB averages, charts, the report CLI (a joblib sweep:
tests/scale/test_report_sweep.py).

Result files come from real runs (MiniLM on local C-MTEB data, limits 50), two model names
simulating two models, plus a task that really fails (a one-label training set).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import local_task as _task
from tests.conftest import run_cli

LIMITS = 50


@pytest.fixture(scope="module")
def reports(tmp_path_factory, data_dir, minilm_path, one_label_classification):
    from rag_eval import run_task
    from rag_eval.report import write_reports

    out = tmp_path_factory.mktemp("out")
    tasks = [_task("LcqmcSTS", "STS", data_dir / "sts/lcqmc-zh"),
             _task("AtecPairs", "PairClassification", data_dir / "pair_classification/atec-zh")]
    for name, extra in (("minilm-a", []), ("minilm-b", [_task("BrokenClassification", "Classification",
                                                                 one_label_classification)])):
        scores = run_task({"model": {"model_name_or_path": minilm_path, "name": name,
                                     "encode_kwargs": {"batch_size": 32}},
                           "eval": {"tasks": tasks + extra, "limits": LIMITS, "output_folder": str(out),
                                    "verbosity": 0}})
        assert set(scores.failed) == {t["name"] for t in extra}
    return out, write_reports(out)


def _csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _result_files(out: Path) -> dict[tuple[str, str], dict]:
    """{(model, task): result JSON} straight from disk."""
    found = {}
    for path in out.glob("*/*/*.json"):
        if path.name in ("model_meta.json", "failures.json"):
            continue
        obj = json.loads(path.read_text(encoding="utf-8"))
        found[(obj["rag_eval"]["model"], obj["task_name"])] = obj
    return found


def _main_score(obj: dict) -> float:
    per_split = [sum(e["main_score"] for e in entries) / len(entries) for entries in obj["scores"].values()]
    return sum(per_split) / len(per_split)


def test_summary_has_every_model_task_and_failure(reports):
    out, files = reports
    rows = {(r["model"], r["task"]): r for r in _csv(out / "summary.csv")}
    assert set(rows) == {("minilm-a", "LcqmcSTS"), ("minilm-a", "AtecPairs"), ("minilm-b", "LcqmcSTS"),
                         ("minilm-b", "AtecPairs"), ("minilm-b", "BrokenClassification")}
    on_disk = _result_files(out)
    assert set(on_disk) == set(rows) - {("minilm-b", "BrokenClassification")}
    for key, obj in on_disk.items():
        row = rows[key]
        assert row["status"] == "ok" and row["error"] == ""
        assert float(row["score"]) == pytest.approx(_main_score(obj), abs=1e-6)
        assert row["metric"] == {"LcqmcSTS": "cosine_spearman", "AtecPairs": "max_ap"}[key[1]]
        assert row["task_type"] == obj["rag_eval"]["task_type"]
        assert row["revision"] == obj["rag_eval"]["revision"]
        assert row["sample"] == f"{LIMITS}/{obj['rag_eval']['sample']['rows_total']} rows"
        assert float(row["seconds"]) == pytest.approx(obj["evaluation_time"], abs=0.06)
        # STS and pair classification embed two sentences per row
        assert int(row["texts"]) == 2 * LIMITS
        assert float(row["texts_per_s"]) == pytest.approx(2 * LIMITS / obj["evaluation_time"], rel=0.01)
    broken = rows[("minilm-b", "BrokenClassification")]
    assert broken["status"] == "FAILED" and "ValueError" in broken["error"]
    assert broken["score"] == "" and broken["task_type"] == "Classification"
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert "FAILED" in md and "## C-MTEB averages" in md and "(scores_by_task.png)" in md
    assert files["csv"] == out / "summary.csv" and files["md"] == out / "summary.md"


def test_cmteb_averages_match_a_recomputation(reports):
    out, _ = reports
    on_disk = _result_files(out)
    averages = {r["label"]: r for r in _csv(out / "averages.csv")}
    assert set(averages) == {"minilm-a", "minilm-b"}
    for model, avg in averages.items():
        mine = {task: obj for (m, task), obj in on_disk.items() if m == model}
        by_type: dict[str, list[float]] = {}
        for obj in mine.values():
            by_type.setdefault(obj["rag_eval"]["task_type"], []).append(_main_score(obj))
        for ttype, values in by_type.items():
            assert float(avg[ttype]) == pytest.approx(sum(values) / len(values), abs=1e-6)
        every = [s for values in by_type.values() for s in values]
        assert float(avg["average"]) == pytest.approx(sum(every) / len(every), abs=1e-6)
        assert int(avg["n_tasks"]) == 2
        assert avg.get("Classification", "") == ""  # the failed task is not averaged ...
        assert int(avg["n_failed"]) == (1 if model == "minilm-b" else 0)  # ... but counted
        texts = sum(2 * LIMITS for _ in mine)
        seconds = sum(obj["evaluation_time"] for obj in mine.values())
        assert float(avg["texts_per_s"]) == pytest.approx(texts / seconds, rel=0.01)


def test_charts_are_real_images(reports):
    from PIL import Image

    out, files = reports
    for key in ("scores_chart", "speed_chart"):
        path = files[key]
        assert path.parent == out and path.stat().st_size > 5_000, path
        with Image.open(path) as img:
            img.verify()
        with Image.open(path) as img:
            assert img.format == "PNG" and img.width > 200 and img.height > 200


def test_failures_json_is_merged(tmp_path):
    from rag_eval.report import collect_results, write_failures
    from rag_eval.results import TaskOutcome, result_path

    def outcome(task, status="failed", model="m/x"):
        return TaskOutcome(task=task, task_type="STS", model=model, status=status, error="boom",
                           path=result_path(tmp_path, model, "rev1", task, "stage1"), stage="stage1")

    path = write_failures([outcome("A"), outcome("B")], tmp_path)
    assert path == tmp_path / "failures.json"
    write_failures([outcome("A", "ok")], tmp_path)  # A finished now; B was not run: still failed
    write_failures([outcome("A", model="other")], tmp_path)  # another job's model: kept beside
    assert sorted((e["model"], e["task"]) for e in json.loads(path.read_text())) == [("m/x", "B"), ("other", "A")]
    rows = collect_results(tmp_path)
    assert [(r.model, r.task, r.status, r.revision, r.stage) for r in rows] == [
        ("m/x", "B", "FAILED", "rev1", "stage1"), ("other", "A", "FAILED", "rev1", "stage1")]
    write_failures([outcome("B", "cached"), outcome("A", "ok", model="other")], tmp_path)
    assert not path.exists() and collect_results(tmp_path) == []


def test_plain_mteb_results_folder(reports, tmp_path, caplog):
    """mteb's ResultCache layout: no rag_eval block, the task type comes from mteb's metadata."""
    from rag_eval.report import collect_results

    out, _ = reports
    [src] = out.glob("minilm-a/*/LcqmcSTS.json")
    obj = json.loads(src.read_text(encoding="utf-8"))
    del obj["rag_eval"]
    obj["task_name"] = "LCQMC"  # a C-MTEB STS task mteb knows
    folder = tmp_path / "results" / "sentence-transformers__all-MiniLM-L6-v2" / "abc123"
    folder.mkdir(parents=True)
    (folder / "LCQMC.json").write_text(json.dumps(obj), encoding="utf-8")
    (folder / "model_meta.json").write_text(json.dumps({"name": "sentence-transformers/all-MiniLM-L6-v2"}))
    (folder / "run_settings.json").write_text("{}")
    (folder / "Broken.json").write_text("{not json")
    with caplog.at_level("WARNING", logger="rag_eval.report"):
        [row] = collect_results(tmp_path / "results")
    assert "Broken.json" in caplog.text
    assert (row.task, row.task_type, row.metric) == ("LCQMC", "STS", "cosine_spearman")
    assert (row.model, row.revision, row.stage, row.status) == ("sentence-transformers/all-MiniLM-L6-v2",
                                                                "abc123", "", "ok")
    assert row.score == pytest.approx(_main_score(obj), abs=1e-6)
    assert row.seconds == pytest.approx(obj["evaluation_time"]) and row.texts_per_s is None


@pytest.mark.subprocess  # python -m rag_eval.report (tests/eval sets slow only)
def test_report_cli_rebuilds_from_files(reports, tmp_path):
    out, _ = reports
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("summary.*", "averages.csv", "*.png", ".cache"))
    proc = run_cli(str(copy), module="rag_eval.report", timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "FAILED" in proc.stdout and "C-MTEB averages" in proc.stdout and "minilm-b" in proc.stdout
    assert _csv(copy / "summary.csv") == _csv(out / "summary.csv")
    assert _csv(copy / "averages.csv") == _csv(out / "averages.csv")
    assert (copy / "scores_by_task.png").stat().st_size > 5_000

    proc = run_cli(str(tmp_path / "missing"), module="rag_eval.report", timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0 and "not found" in proc.stderr


def test_ci95_memo_answers_unchanged_per_item_files_only(reports, tmp_path):
    """A rebuilt report takes each CI from .cache/ci95.json while its per-item file is unchanged; a changed
    file is resampled (the memo is a cache: a planted value shows it is read, and goes once the file moves)."""
    import os

    from rag_eval.report import write_reports

    out, _ = reports
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    memo_path = copy / ".cache" / "ci95.json"
    memo = json.loads(memo_path.read_text(encoding="utf-8"))
    before = {(r["model"], r["task"]): r["ci95"] for r in _csv(copy / "summary.csv")}
    assert sorted(k for k, v in before.items() if v) == [("minilm-a", "AtecPairs"), ("minilm-a", "LcqmcSTS"),
                                                         ("minilm-b", "AtecPairs"), ("minilm-b", "LcqmcSTS")]
    assert len(memo) == 4
    source = next(p for p in memo if "minilm-a" in p and "LcqmcSTS" in p)
    moved = {str(Path(p).relative_to(out)): v for p, v in memo.items()}
    memo = {str(copy / p): v for p, v in moved.items()}  # the copy's own paths
    memo[str(copy / Path(source).relative_to(out))]["ci"] = "[0.1111, 0.2222]"
    memo_path.write_text(json.dumps(memo), encoding="utf-8")
    write_reports(copy)
    planted = {(r["model"], r["task"]): r["ci95"] for r in _csv(copy / "summary.csv")}
    assert planted == {**before, ("minilm-a", "LcqmcSTS"): "[0.1111, 0.2222]"}
    per_item = copy / Path(source).relative_to(out)
    os.utime(per_item, ns=(per_item.stat().st_atime_ns, per_item.stat().st_mtime_ns + 1_000_000))
    write_reports(copy)
    assert {(r["model"], r["task"]): r["ci95"] for r in _csv(copy / "summary.csv")} == before
