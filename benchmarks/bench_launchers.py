"""Wall time of one 2-job sweep on each Hydra launcher, side by side, in one run.

The sweep: MiniLM under two names (``model.name=minilm-a,minilm-b``, so the jobs share nothing but
the output folder) on the embedded demo (six tasks, ``eval.limits=20``), into a fresh output folder
per launcher and repetition:

* ``basic``: Hydra's default, the jobs one after another in one process (one torch / mteb import);
* ``joblib``: two local worker processes (``launcher=joblib``);
* ``submitit_local``: one process per job through submitit's local executor, SLURM's code path;
* ``ray``: two Ray tasks on a local Ray cluster (127.0.0.1) that this script starts first and stops
  at the end; its start-up is timed on its own line (a cluster is started once for many sweeps).

Every sweep is checked: 2 x 6 result files, and both job records (``.runs/``) ``done``. The table
also gives each job's own time from its record (model load + tasks, without the process start and
imports) and the speed-up over ``basic``.

    .venv/bin/python benchmarks/bench_launchers.py              # 1 repetition (~15 min on 2 busy cores)
    .venv/bin/python benchmarks/bench_launchers.py --repeats 3
    .venv/bin/python benchmarks/bench_launchers.py --quick      # two demo tasks instead of six
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, median, table  # noqa: E402

sys.path.insert(0, str(ROOT))
from tests import ray_local  # noqa: E402 - the Ray head of tests/scale/test_launchers.py, set up the same way

LAUNCHERS = ("basic", "joblib", "submitit_local", "ray")
DEMO = ROOT / "rag_eval" / "demo_data"
QUICK_TASKS = [{"name": "StsbSTS", "type": "STS", "path": str(DEMO / "sts/stsb-zh-mini")},
               {"name": "StsbPairs", "type": "PairClassification",
                "path": str(DEMO / "pair_classification/stsb-pairs-zh-mini")}]


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "RAG_EVAL_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
            **ray_local.RAY_ENV, **extra}


def start_ray(temp: Path) -> tuple[subprocess.Popen, str, float]:
    """``ray start --head --block`` from the repository root, in its own session; (process, address, seconds)."""
    t0 = time.perf_counter()
    proc, address, log = ray_local.start_head(temp, ROOT, env())
    while not ray_local.started(log):
        if proc.poll() is not None or time.perf_counter() - t0 > 300:
            sys.exit(f"ray start failed:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.5)
    return proc, address, time.perf_counter() - t0


def stop_ray(proc: subprocess.Popen) -> float:
    """SIGTERM to ``ray start --block`` (Ray drains and stops its processes), then its session is killed."""
    t0 = time.perf_counter()
    ray_local.stop_head(proc)
    return time.perf_counter() - t0


def sweep(launcher: str, out: Path, conf: Path, quick: bool, address: str | None) -> dict:
    args = [sys.executable, "-m", "rag_eval", "-m", "model.name=minilm-a,minilm-b", f"launcher={launcher}",
            f"eval.output_folder={out}"]
    args += [f"hydra.searchpath=[file://{conf}]", "eval=tiny"] if quick else ["eval=demo", "eval.limits=20"]
    if launcher == "joblib":
        args.append("hydra.launcher.n_jobs=2")
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, env=env(**({"RAY_ADDRESS": address} if address else {})),
                          capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{launcher} sweep failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    results = [p for p in out.glob("*/*/*.json") if p.name != "model_meta.json"]
    records = [json.loads(p.read_text()) for p in (out / ".runs").glob("*.json")]
    n_tasks = len(QUICK_TASKS) if quick else 6
    if len(results) != 2 * n_tasks or sorted(r["status"] for r in records) != ["done", "done"]:
        sys.exit(f"{launcher}: {len(results)} result files, records {[r['status'] for r in records]}")
    return {"wall": wall, "jobs": sorted(r["seconds"] for r in records)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="two demo tasks instead of six")
    parser.add_argument("--launchers", default=",".join(LAUNCHERS), help="comma-separated subset")
    args = parser.parse_args(argv)
    launchers = [x for x in args.launchers.split(",") if x]

    work = Path(tempfile.mkdtemp(prefix="bench-launchers-"))
    conf = work / "conf"
    (conf / "eval").mkdir(parents=True)
    (conf / "eval" / "tiny.yaml").write_text(json.dumps(
        {"defaults": ["base", "_self_"], "tasks": QUICK_TASKS, "limits": 20, "verbosity": 1}))
    print(f"nproc {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} at the start, "
          f"sweep: 2 jobs x {'2 demo tasks' if args.quick else 'the demo (6 tasks)'}, limits 20")
    ray_proc = address = None
    ray_temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's unix sockets live under it
    try:
        if "ray" in launchers:
            ray_proc, address, ray_start = start_ray(ray_temp)
            print(f"ray start --head (once, before the sweeps): {ray_start:.1f} s")
        runs: dict[str, list[dict]] = {x: [] for x in launchers}
        for i in range(args.repeats):
            for launcher in launchers:  # interleaved, so that machine noise spreads over every launcher
                out = work / f"{launcher}-{i}"
                runs[launcher].append(sweep(launcher, out, conf, args.quick, address))
                print(f"  {launcher} #{i + 1}: {runs[launcher][-1]['wall']:.1f} s", flush=True)
                shutil.rmtree(out, ignore_errors=True)
    finally:
        if ray_proc is not None:
            print(f"ray stop: {stop_ray(ray_proc):.1f} s")
        shutil.rmtree(ray_temp, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)

    base = median([r["wall"] for r in runs["basic"]]) if "basic" in runs else None
    rows = []
    for launcher in launchers:
        walls = [r["wall"] for r in runs[launcher]]
        jobs = [j for r in runs[launcher] for j in r["jobs"]]
        rows.append([launcher, median(walls), min(walls), max(walls), median(jobs), max(jobs),
                     f"{base / median(walls):.2f}x" if base else "-"])
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    print()
    print(table(["launcher", "wall s (median)", "min", "max", "job s (median)", "job s (max)", "vs basic"], rows))


if __name__ == "__main__":
    main()
