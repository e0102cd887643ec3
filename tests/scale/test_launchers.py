"""Scale-out on real engines: a 2-model sweep as Ray tasks on a real local Ray cluster and the same
sweep through submitit's local executor, both into one output folder (one summary of all four jobs),
each rerun (one of its models) with nothing recomputed; two concurrent jobs on one model and folder; a report over a
half-finished folder; the job records themselves.

The sweep is MiniLM under two names per launcher (``model.name=minilm-a,minilm-b`` on Ray,
``minilm-c,minilm-d`` on submitit) on two tasks of the embedded demo (STS and PairClassification,
limits 20): every job still pays its own torch / mteb import (~40 s here), which is what a launcher
costs on 2 cores.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from tests import ray_local
from tests.conftest import ROOT, cli_env, local_task, run_cli, start_cli
from tests.ray_local import RAY_ENV
from tests.ray_local import mentioning as _mentioning
from tests.ray_local import session as _session

DEMO = ROOT / "rag_eval" / "demo_data"
TINY = [local_task("StsbSTS", "STS", DEMO / "sts/stsb-zh-mini"),
        local_task("StsbPairs", "PairClassification", DEMO / "pair_classification/stsb-pairs-zh-mini")]
RAY_MODELS, SUBMITIT_MODELS = ("minilm-a", "minilm-b"), ("minilm-c", "minilm-d")
LIMITS = 20


def _eval_group(conf: Path, name: str, tasks: list[dict], out: Path, **extra) -> None:
    """An eval group in a search-path folder (``hydra.searchpath=[file://<conf>]``, ``eval=<name>``)."""
    (conf / "eval").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create({"defaults": ["base", "_self_"], "tasks": tasks, "limits": LIMITS,
                                     "output_folder": str(out), "verbosity": 1, **extra}),
                   conf / "eval" / f"{name}.yaml")


def _sweep(conf: Path, launcher: str, models: tuple[str, ...], *extra: str) -> list[str]:
    return ["-m", "eval=tiny", f"hydra.searchpath=[file://{conf}]", f"model.name={','.join(models)}",
            f"launcher={launcher}", *extra]


def _csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _results(out: Path) -> dict[Path, tuple[int, bytes]]:
    """Every result file: (mtime in ns, bytes)."""
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(out.glob("*/*/*.json"))
            if p.name != "model_meta.json"}


def _records(out: Path) -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted((out / ".runs").glob("*.json"))]


def _chunks(out: Path) -> list[Path]:
    return sorted((out / ".cache").rglob("chunk-*.npy"))


def _check_sweep(out: Path, launcher: str, models: tuple[str, ...], counts: str) -> list[dict]:
    """This sweep's two jobs (the last two records of ``launcher``) each wrote their model's results and logged
    their progress and summary line; the folder's one summary shows every model and every job."""
    tasks = sorted(t["name"] for t in TINY)
    everyone = sorted({p.parts[-3] for p in _results(out)})
    assert set(models) <= set(everyone)
    assert sorted((p.parts[-3], p.stem) for p in _results(out)) == [(m, t) for m in everyone for t in tasks]
    rows = _csv(out / "summary.csv")
    assert sorted((r["model"], r["task"], r["status"], r["sample"]) for r in rows) == [
        (m, t, "ok", f"{LIMITS}/400 rows") for m in everyone for t in tasks]
    records = [r for r in _records(out) if r["launcher"]["launcher"] == launcher][-len(models):]
    assert sorted(r["label"] for r in records) == [f"job {i}" for i in range(len(models))]
    assert sorted(o.partition("=")[2] for r in records for o in r["launcher"]["overrides"]
                  if o.startswith("model.name=")) == sorted(models)
    for record in records:
        assert record["status"] == "done" and len(record["planned"]) == 2, record
        log = Path(record["launcher"]["log"]).read_text(encoding="utf-8")
        assert f"rag_eval: {record['label']} [2/2] " in log
        assert f"rag_eval: {record['label']} done: {counts} in " in log, log[-2000:]
    md = (out / "summary.md").read_text(encoding="utf-8")
    n, jobs = len(everyone) * len(tasks), len(_records(out))
    assert f"{n} task results: {n} ok, 0 FAILED, 0 running, 0 missing; {jobs} jobs: {jobs} done" in md
    return records


def _check_rerun(out: Path, launcher: str, model: str, run) -> None:
    """``overwrite_results: false`` through the same launcher, for one of its models (one job: each job pays
    its own imports): no result rewritten, no text encoded."""
    before, chunks, jobs = _results(out), _chunks(out), len(_records(out))
    proc = run("eval.overwrite_results=false", models=(model,))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _results(out) == before  # same bytes, same mtimes
    assert _chunks(out) == chunks  # nothing new in the embedding cache
    _check_sweep(out, launcher, (model,), "0 ok, 0 failed, 2 cached")
    assert len(_records(out)) == jobs + 1


# --------------------------------------------------------------------------- Ray


@pytest.fixture
def ray_cluster():
    """A real Ray head on 127.0.0.1 (free ports, its own temp dir), started from the repository root with the
    jobs' environment (Ray's workers take both from `ray start`), stopped at the end whatever happened.

    ``ray start --block`` in its own session, stopped by SIGTERM (Ray drains and stops its processes),
    then any process left in that session is killed: unlike ``ray stop``, this never touches another
    Ray on the machine.
    """
    pytest.importorskip("ray")
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's unix sockets live under it
    env = cli_env(**RAY_ENV)
    proc, address, log = ray_local.start_head(temp, ROOT, env)
    try:
        deadline = time.monotonic() + 180
        while not ray_local.started(log):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(1)
        yield address, env
    finally:
        ray_local.stop_head(proc)
        left = _session(proc.pid) + _mentioning(str(temp))
        shutil.rmtree(temp, ignore_errors=True)
        assert not left, f"Ray processes left: {left}"


def _wait_gone(text: str, timeout: float = 60) -> list[int]:
    """Wait until no process mentions ``text`` on its command line; those still left."""
    deadline = time.monotonic() + timeout
    while (left := _mentioning(text)) and time.monotonic() < deadline:
        time.sleep(1)
    return left


@pytest.mark.slow
@pytest.mark.subprocess
def test_ray_and_submitit_sweeps_into_one_folder(tmp_path, ray_cluster):
    """2 jobs as Ray tasks on a real local cluster, then 2 through submitit's local executor (SLURM's code
    path), into one output folder: one results tree, one summary showing all four jobs; a rerun of one model
    through each launcher with overwrite_results: false recomputes nothing; no job process outlives its sweep."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    address, env = ray_cluster
    conf, out = tmp_path / "conf", tmp_path / "out"
    _eval_group(conf, "tiny", TINY, out)

    def ray(*extra: str, models: tuple[str, ...] = RAY_MODELS):
        return run_cli(*_sweep(conf, "ray", models, *extra), env={**env, "RAY_ADDRESS": address}, timeout=900)

    def submitit(*extra: str, models: tuple[str, ...] = SUBMITIT_MODELS):
        return run_cli(*_sweep(conf, "submitit_local", models, *extra), timeout=900)

    proc = ray()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"Connecting to existing Ray cluster at address: {address}" in proc.stderr + proc.stdout
    records = _check_sweep(out, "RayLauncher", RAY_MODELS, "2 ok, 0 failed, 0 cached")
    assert len({r["pid"] for r in records}) == 2  # two Ray workers
    assert all(r["launcher"]["id"].startswith("job_id_for_") for r in records)
    assert "(_run_job pid=" in proc.stdout + proc.stderr  # the jobs' lines reach the driver

    proc = submitit()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Submitit 'local' sweep output dir" in proc.stdout + proc.stderr
    records = _check_sweep(out, "LocalLauncher", SUBMITIT_MODELS, "2 ok, 0 failed, 0 cached")
    assert len(_records(out)) == 4 and {r["launcher"]["launcher"] for r in _records(out)} == {
        "RayLauncher", "LocalLauncher"}
    for job_id in sorted(r["launcher"]["id"] for r in records):  # submitit's own per-job log: progress, summary
        (log,) = out.glob(f".hydra/multirun/*/.submitit/{job_id}/{job_id}_0_log.out")
        text = log.read_text(encoding="utf-8")
        assert "rag_eval: job " in text and " done: 2 ok, 0 failed" in text
    assert not _wait_gone(str(out / ".hydra")), "submitit job processes left"

    _check_rerun(out, "RayLauncher", RAY_MODELS[1], ray)
    _check_rerun(out, "LocalLauncher", SUBMITIT_MODELS[0], submitit)
    assert not _wait_gone(str(out / ".hydra")), "submitit job processes left"


def test_submitit_slurm_group_composes():
    """``launcher=submitit_slurm`` is a real group: the plugin's SLURM launcher with rag_eval's defaults."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from hydra import compose, initialize_config_dir

    import rag_eval.config  # noqa: F401 - the groups' base options

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["launcher=submitit_slurm", "hydra.launcher.partition=gpu"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.partition, launcher.timeout_min, launcher.max_num_timeout, launcher.gpus_per_node) == \
        ("gpu", 240, 0, None)
    # the job logs sit in the sweep folder, under eval.output_folder (on a shared file system)
    assert launcher.submitit_folder.startswith("outputs/.hydra/multirun/")
    assert launcher.submitit_folder.endswith("/.submitit/%j")


# --------------------------------------------------------------------------- one folder, concurrent jobs


def _two_stage_results(out: Path) -> dict[str, dict]:
    """Every result file of a two-stage folder, by its path under ``out`` -> its scores."""
    return {str(p.relative_to(out)): json.loads(p.read_text(encoding="utf-8"))["scores"]
            for stage in ("stage1", "stage2") for p in sorted((out / stage).rglob("*.json"))
            if p.name != "model_meta.json" and "predictions" not in p.parts and "per_item" not in p.parts}


def _cache_chunks(out: Path, kind: str) -> list[Path]:
    return sorted((out / ".cache" / kind).rglob("chunk-*.npy"))


@pytest.mark.slow
@pytest.mark.subprocess
def test_concurrent_jobs_on_one_model_and_folder(tmp_path, one_label_classification, reranker_path):
    """Two processes, same bi-encoder and reranker (two-stage), same output folder, overlapping tasks (both
    retrieve and rerank CmrcRetrieval: the same embeddings, pair scores, result and predictions files), each
    with a failing task: every file stays whole; the embedding cache and the reranker's score cache hold
    every writer's chunks, keys and values paired; the summary and failures.json hold both jobs' tasks; a
    rerun from the caches computes nothing new and scores the same."""
    from rag_eval import run_task
    from rag_eval.results import read_failures
    from rag_eval.stages.vector_store import VectorStore

    conf, out = tmp_path / "conf", tmp_path / "out"
    broken = {n: local_task(n, "Classification", one_label_classification) for n in ("BrokenA", "BrokenB")}
    cmrc = local_task("CmrcRetrieval", "Retrieval", DEMO / "retrieval/cmrc2018-zh-mini")  # two-stage needs one
    # kept small: 40 of CMRC's 300 long passages, 3 candidates per query, 128 tokens
    _eval_group(conf, "a", [cmrc, TINY[0], broken["BrokenA"]], out, top_k=3, corpus_size=40)
    _eval_group(conf, "b", [cmrc, TINY[1], broken["BrokenB"]], out, top_k=3, corpus_size=40)
    procs = [start_cli([f"eval={name}", f"hydra.searchpath=[file://{conf}]", "reranker=ms_marco_minilm_local",
                        "model.max_seq_length=128", "reranker.max_seq_length=128"]) for name in ("a", "b")]
    outputs = [p.communicate(timeout=900) for p in procs]
    for proc, (_stdout, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 1, stderr[-3000:]  # exit 1: its Broken task failed
        assert "1 task(s) FAILED: Broken" in stderr

    # every file parses; no temp file is left behind
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".tmp-")]
    for path in out.rglob("*.json"):
        json.loads(path.read_text(encoding="utf-8"))

    # both caches: one folder each, each writer's own chunks, keys and values paired, every key readable
    for kind, width in (("embeddings", 384), ("rerank_scores", 1)):
        chunks = _cache_chunks(out, kind)
        (folder,) = {p.parent for p in chunks}
        keys = [json.loads(p.with_suffix(".json").read_text()) for p in chunks]
        for chunk, chunk_keys in zip(chunks, keys, strict=True):
            assert np.load(chunk, allow_pickle=False).shape == (len(chunk_keys), width), chunk
        stems = {p.name.rsplit("-", 1)[0] for p in chunks}
        # embeddings: both jobs encode new texts; scores: both normally do (one may find the other's first)
        assert len(stems) == 2 if kind == "embeddings" else len(stems) in (1, 2), (kind, stems)
        assert len(VectorStore(folder)) == len({k for chunk_keys in keys for k in chunk_keys})

    # one summary with both jobs' tasks and stages; failures.json kept both failures
    rows = {(r["task"], r["stage"], r["status"]) for r in _csv(out / "summary.csv")}
    assert rows == {("CmrcRetrieval", "stage1", "ok"), ("CmrcRetrieval", "stage2", "ok"), ("StsbSTS", "stage1", "ok"),
                    ("StsbPairs", "stage1", "ok"), ("BrokenA", "stage1", "FAILED"), ("BrokenB", "stage1", "FAILED")}
    assert sorted(e["task"] for e in read_failures(out / "failures.json")) == ["BrokenA", "BrokenB"]
    assert sorted(r["status"] for r in _records(out)) == ["done", "done"]
    configs = sorted(out.glob(".hydra/*/.hydra/config.yaml"))
    assert len(configs) == 2  # each run kept its own saved config

    # the cached vectors and scores are right: job a's own config, rerun over every task (overwrite on),
    # encodes and scores nothing new and gives the same scores
    before = _two_stage_results(out)
    chunks = {kind: _cache_chunks(out, kind) for kind in ("embeddings", "rerank_scores")}
    cfg = OmegaConf.load(configs[0])
    cfg.eval.tasks = [cmrc, *TINY]
    cfg.eval.verbosity = 0
    scores = run_task(cfg)
    assert scores.ok and sorted(scores) == ["CmrcRetrieval", "StsbPairs", "StsbSTS"]
    assert {kind: _cache_chunks(out, kind) for kind in chunks} == chunks
    after = _two_stage_results(out)
    assert sorted(after) == sorted(before) and len(after) == 4
    for path, result in after.items():
        split = next(iter(result))
        assert result[split][0]["main_score"] == pytest.approx(before[path][split][0]["main_score"], abs=1e-6), path


def test_score_cache_writers_with_one_pid_keep_their_scores(tmp_path):
    """The reranker's score cache (the embedding cache's storage): two writers in one process (as two jobs
    with one pid on two nodes) each keep their pairs' scores; a third reader scores nothing again."""
    from types import SimpleNamespace

    from rag_eval.stages.reranking import LengthSortedCrossEncoder
    from rag_eval.stages.vector_store import VectorStore

    class Served:  # a served reranker's surface: it scores pairs itself, and counts them
        mteb_model_meta = None

        def __init__(self):
            self.scored: list[tuple[str, str]] = []

        def score_pairs(self, pairs, batch_size, on_batch=None):
            self.scored += pairs
            return [float(len(q) + 10 * len(d)) for q, d in pairs]

    def predict(encoder, pairs):
        return encoder.predict([{"text": [q for q, _ in pairs]}], [{"text": [d for _, d in pairs]}],
                               task_metadata=SimpleNamespace(name="T"), hf_split="test", hf_subset="default",
                               show_progress_bar=False).tolist()

    first, second = (LengthSortedCrossEncoder(Served(), "stage2", VectorStore(tmp_path)) for _ in range(2))
    predict(first, [("a", "bb"), ("ccc", "d")])
    predict(second, [("ccc", "d"), ("e", "ffff")])  # opened before first wrote: scores its pair again
    assert len(list(tmp_path.glob("chunk-*.npy"))) == 2
    reader = LengthSortedCrossEncoder(Served(), "stage2", VectorStore(tmp_path))
    assert predict(reader, [("a", "bb"), ("ccc", "d"), ("e", "ffff")]) == [21.0, 13.0, 41.0]
    assert reader.wrapper.scored == [] and reader.pairs_scored == 0


# --------------------------------------------------------------------------- a half-finished folder


@pytest.mark.slow
@pytest.mark.subprocess
def test_report_over_a_half_finished_folder(tmp_path, one_label_classification):
    """A job killed mid-run: while it runs its tasks are running; after SIGKILL the report shows what is
    done, FAILED and missing (and the job as died)."""
    from rag_eval.report import collect_jobs, collect_results

    conf, out = tmp_path / "conf", tmp_path / "out"
    slow = local_task("CmrcRetrieval", "Retrieval", DEMO / "retrieval/cmrc2018-zh-mini")  # the longest demo task
    tasks = [TINY[0], local_task("Broken", "Classification", one_label_classification), slow, TINY[1]]
    _eval_group(conf, "half", tasks, out)
    proc = start_cli(["eval=half", f"hydra.searchpath=[file://{conf}]"])
    try:
        deadline = time.monotonic() + 600
        while True:
            records = _records(out) if (out / ".runs").is_dir() else []
            if records and sum(records[0]["done"].values()) >= 2:
                break
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-3000:]
            time.sleep(0.5)
        running = {r.task: r.status for r in collect_results(out)}
        (job,) = collect_jobs(out)
        assert job.state == "running" and (job.planned, job.ok, job.failed, job.not_done) == (4, 1, 1, 2)
    finally:
        proc.kill()
        proc.communicate()
    assert running == {"StsbSTS": "ok", "Broken": "FAILED", "CmrcRetrieval": "running", "StsbPairs": "running"}

    report = run_cli(str(out), "--no-charts", module="rag_eval.report", timeout=300)
    assert report.returncode == 0, report.stderr[-2000:]
    assert "4 task results: 1 ok, 1 FAILED, 0 running, 2 missing; 1 jobs: 1 died" in report.stdout
    rows = {r["task"]: r for r in _csv(out / "summary.csv")}
    assert {t: r["status"] for t, r in rows.items()} == {
        "StsbSTS": "ok", "Broken": "FAILED", "CmrcRetrieval": "missing", "StsbPairs": "missing"}
    assert "whose process is gone" in rows["StsbPairs"]["error"]
    assert rows["CmrcRetrieval"]["revision"].startswith("local-")  # the exact plan, once the model had loaded
    averages = _csv(out / "averages.csv")
    assert [(a["n_tasks"], a["n_failed"]) for a in averages] == [("1", "1")]  # missing ones are no failures


# --------------------------------------------------------------------------- job records (no model)


def test_job_record_states_and_planned_rows(tmp_path):
    """A record's life (starting -> running -> done), a dead pid reads as died, a planned task without a
    result is running / missing, a plan without revisions matches any revision."""
    from rag_eval.report import collect_jobs, collect_results
    from rag_eval.results import (
        JobInfo,
        JobRecord,
        ResultPlace,
        TaskOutcome,
        job_state,
        planned_task,
        read_jobs,
        write_failures,
    )

    out = tmp_path / "out"
    record = JobRecord(out, JobInfo(label="job 7", multirun=True, details={"overrides": ["model.name=x"]}))
    record.plan([planned_task("", "x", "", "", "T1", "STS"), planned_task("", "x", "", "", "T2", "STS")],
                status="starting")
    (saved,) = read_jobs(out)
    assert saved["status"] == "starting" and job_state(saved) == "running" and saved["pid"] == os.getpid()
    record.plan([planned_task("", "x", "rev1", "", "T1", "STS"), planned_task("", "x", "rev1", "", "T2", "STS")])
    failed = TaskOutcome(task="T1", task_type="STS", model="x", status="failed", error="boom", seconds=1.0,
                         place=ResultPlace("x", "rev1"))
    write_failures([failed], out)
    record.task_done(failed)
    rows = [(r.task, r.status, r.revision) for r in collect_results(out)]
    assert rows == [("T1", "FAILED", "rev1"), ("T2", "running", "rev1")]
    assert record.finish() == f"rag_eval: job 7 done: 0 ok, 1 failed, 0 cached in 0 s -> {out.resolve()}"
    (job,) = collect_jobs(out)
    assert (job.state, job.planned, job.failed, job.not_done, job.overrides) == ("done", 2, 1, 1, "model.name=x")
    assert [(r.task, r.status) for r in collect_results(out)] == [("T1", "FAILED"), ("T2", "missing")]
    other = JobRecord(out, JobInfo(label="job 8"))  # a later job whose plan (no revision yet) T1's failure answers
    other.plan([planned_task("", "x", "", "", "T1", "STS"), planned_task("", "y", "", "", "T1", "STS")])
    assert [(r.model, r.task, r.status) for r in collect_results(out)] == [
        ("x", "T1", "FAILED"), ("x", "T2", "missing"), ("y", "T1", "running")]

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert job_state({**saved, "pid": dead.pid}) == "died"
    assert job_state({**saved, "host": "another-node"}) == "running"  # cannot look: taken at its word
    (out / ".runs" / "broken.json").write_text("{not json")
    assert len(read_jobs(out)) == 2  # an unreadable record is skipped


def test_plan_of_a_top_k_sweep_a_search_model_and_retrieval_options():
    """A job's plan, before and after its models load: a top_k sweep plans stage 2 once per k (its
    experiments named once the revisions are known); a BM25 / hybrid stage 1 leaves out what it cannot
    score; names and retrieval options (embed_dim) come from the config alone."""
    from types import SimpleNamespace

    from rag_eval.config import load_config
    from rag_eval.pipeline import plan

    tasks = [SimpleNamespace(metadata=SimpleNamespace(name=n, type=t))
             for n, t in (("R", "Retrieval"), ("S", "STS"), ("K", "Reranking"))]
    entries = [local_task(t.metadata.name, t.metadata.type, DEMO) for t in tasks]

    def entries_of(cfg, **models):
        return [(e["stage"], e["model"], e["revision"], e["experiment"], e["task"])
                for e in plan(load_config(cfg), tasks, False, **models)]

    bm25 = {"model_type": "bm25", "model_kwargs": {"tokenizer": "char"}}
    ce = {"model_name_or_path": "y", "name": "ce", "is_cross_encoder": True}
    sweep = {"model": [bm25, ce], "eval": {"tasks": entries, "top_k": [5, 10]}}
    assert entries_of(sweep) == [  # S: BM25 scores no STS; stage 2 twice (k = 10, 5), experiments not known yet
        ("stage1", "bm25s-char", "", "", "R"), ("stage2", "ce", "", "", "R"), ("stage2", "ce", "", "", "R"),
        ("stage1", "bm25s-char", "", "", "K"), ("stage2", "ce", "", "", "K"), ("stage2", "ce", "", "", "K")]
    loaded = {"bi": SimpleNamespace(name="bm25s-char", revision="r1"), "ce": SimpleNamespace(name="ce", revision="r2")}
    assert [e for e in entries_of(sweep, **loaded) if e[-1] == "R"] == [
        ("stage1", "bm25s-char", "r1", "", "R"), ("stage2", "ce", "r2", "bm25s-char_r1_top10", "R"),
        ("stage2", "ce", "r2", "bm25s-char_r1_top5", "R")]

    one = {"model": {"model_name_or_path": "x", "name": "m", "embed_dim": 128}, "eval": {"tasks": entries}}
    assert entries_of(one) == [("", "m", "", "dim128", t) for t in ("R", "S", "K")]
    hybrid = {"model": {"model_type": "hybrid", "hybrid": {"models": [bm25, {"model_name_or_path": "org/m",
                                                                            "embed_dim": 64}]}},
              "eval": {"tasks": entries}}
    assert entries_of(hybrid) == [("", "hybrid-rrf-bm25s-char+m-dim64", "", "", t) for t in ("R", "K")]


def test_embedding_cache_writers_with_one_pid_keep_their_chunks(tmp_path):
    """Two writers with the same pid (jobs on two nodes of a shared file system, a reused Ray worker)
    each keep their own chunk files: a later reader gets every vector, paired with its own key."""
    from rag_eval.stages.vector_store import VectorStore

    first, second = VectorStore(tmp_path), VectorStore(tmp_path)  # both opened an empty folder
    first.add(["a", "b"], np.array([[1.0, 0.0], [0.0, 1.0]]))
    second.add(["c"], np.array([[0.5, 0.5]]))
    reader = VectorStore(tmp_path)
    assert sorted(reader) == ["a", "b", "c"]
    assert reader["b"].tolist() == [0.0, 1.0] and reader["c"].tolist() == [0.5, 0.5]
    assert len(list(tmp_path.glob("chunk-*.npy"))) == 2
