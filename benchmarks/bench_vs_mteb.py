"""(a) rag_eval one-stage wall time vs plain ``mteb.evaluate(SentenceTransformer(path), task, cache=None)``.

Same local data, same samples (both sides load and sample with rag_eval's loader, since mteb has
no loader for the local layouts), same batch size, all-MiniLM-L6-v2 on CPU. Per repetition:

* ``mteb``: per task ``SentenceTransformer(path)`` + load/sample + ``mteb.evaluate(..., cache=None)``;
* ``rag_eval``: per task ``run_task`` into a FRESH output folder (cold embedding cache);
* ``rerun``: the same ``run_task`` calls again into the same folder (warm embedding cache).

One ``run_task`` per task, because each task has its own ``limits``. The order of mteb and
rag_eval alternates between repetitions. Prints per-task and total times, median ratios and the
max |score difference| (every metric mteb reports, per task).

    .venv/bin/python benchmarks/bench_vs_mteb.py            # 3 repetitions, full limits (~6-10 min)
    .venv/bin/python benchmarks/bench_vs_mteb.py --quick    # 1 repetition, small limits
"""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    BATCH,
    DATA,
    Timer,
    fresh_dir,
    median,
    metric_diff,
    rag_cfg,
    start,
    table,
)


def run_mteb(model_path: str, name: str, ttype: str, folder: str, limits: int | None) -> tuple[float, dict]:
    """Plain mteb on the task; returns (seconds, {split: metrics})."""
    import mteb
    from sentence_transformers import SentenceTransformer

    from rag_eval.config import load_config
    from rag_eval.resolve.tasks import resolve_task
    from rag_eval.stages.task_steps import prepare_task

    cfg = rag_cfg(model_path, name, ttype, folder, limits, Path("unused"))
    with Timer() as t:
        ev = load_config(cfg).eval
        model = SentenceTransformer(model_path, device="cpu")
        task = resolve_task({"name": name, "type": ttype, "path": str(DATA / folder)}, ev, "bench")
        prepare_task(task, ev)
        result = mteb.evaluate(model, task, cache=None, overwrite_strategy="always",
                               encode_kwargs={"batch_size": BATCH, "show_progress_bar": False},
                               show_progress_bar=False, co2_tracker=False)
    res = result.task_results[0]
    return t.seconds, {split: entries[0] for split, entries in res.scores.items()}


def run_rag(model_path: str, name: str, ttype: str, folder: str, limits: int | None, out: Path) -> tuple[float, dict]:
    from rag_eval import run_task

    with Timer() as t:
        scores = run_task(rag_cfg(model_path, name, ttype, folder, limits, out))
    if not scores.ok:
        raise RuntimeError(f"rag_eval failed: {scores.failed}")
    return t.seconds, scores[name]


WORST_METRIC: dict[str, tuple[float, str]] = {}  # task -> its largest difference and where


def _worst(task: str, found: tuple[float, str]) -> float:
    if found[0] > WORST_METRIC.get(task, (0.0, ""))[0]:
        WORST_METRIC[task] = found
    return found[0]


def main_diff(ours: dict, ref: dict) -> float:
    """|difference| of the task's main score (max over splits)."""
    return max((abs(float(ours.get(split, {}).get("main_score", math.nan)) - float(m["main_score"]))
                for split, m in ref.items() if "main_score" in m), default=0.0)


def main(argv: list[str] | None = None) -> int:
    args, repeats, model_path, tasks = start(argv, __doc__)

    times: dict[str, dict[str, list[float]]] = {k: {n: [] for n, *_ in tasks} for k in ("mteb", "rag", "rerun")}
    diffs: dict[str, float] = {n: 0.0 for n, *_ in tasks}
    rerun_diffs: dict[str, float] = {n: 0.0 for n, *_ in tasks}
    main_diffs: dict[str, float] = {n: 0.0 for n, *_ in tasks}
    for rep in range(repeats):
        out = fresh_dir("bench-vs-mteb-")
        ref_scores: dict[str, Any] = {}
        rag_scores: dict[str, Any] = {}

        def do_mteb(ref_scores=ref_scores):
            for n, t, p, lim in tasks:
                sec, ref_scores[n] = run_mteb(model_path, n, t, p, lim)
                times["mteb"][n].append(sec)

        def do_rag(out=out, rag_scores=rag_scores):
            for n, t, p, lim in tasks:
                sec, rag_scores[n] = run_rag(model_path, n, t, p, lim, out)
                times["rag"][n].append(sec)

        for step in ((do_mteb, do_rag) if rep % 2 == 0 else (do_rag, do_mteb)):
            step()
        for n, t, p, lim in tasks:  # rerun: same folder, the embedding cache is warm
            sec, again = run_rag(model_path, n, t, p, lim, out)
            times["rerun"][n].append(sec)
            rerun_diffs[n] = max(rerun_diffs[n], _worst(n, metric_diff(again, ref_scores[n], "mteb")))
        for n, *_ in tasks:
            diffs[n] = max(diffs[n], _worst(n, metric_diff(rag_scores[n], ref_scores[n], "mteb")))
            main_diffs[n] = max(main_diffs[n], main_diff(rag_scores[n], ref_scores[n]))
        tot = {k: sum(v[n][-1] for n, *_ in tasks) for k, v in times.items()}
        print(f"rep {rep + 1}/{repeats}: mteb {tot['mteb']:.1f}s  rag_eval {tot['rag']:.1f}s  "
              f"rerun {tot['rerun']:.1f}s  ("
              + ", ".join(f"{n} {times['mteb'][n][-1]:.1f}/{times['rag'][n][-1]:.1f}/{times['rerun'][n][-1]:.1f}"
                          for n, *_ in tasks) + " s mteb/rag_eval/rerun)", flush=True)
        shutil.rmtree(out, ignore_errors=True)

    rows = []
    for n, t, _, lim in tasks:
        m, r, rr = (median(times[k][n]) for k in ("mteb", "rag", "rerun"))
        rows.append([n, t, lim if lim is not None else "all", m, r, rr, r / m, rr / m,
                     max(diffs[n], rerun_diffs[n]), main_diffs[n]])
    totals = {k: [sum(v[n][i] for n, *_ in tasks) for i in range(repeats)] for k, v in times.items()}
    m, r, rr = median(totals["mteb"]), median(totals["rag"]), median(totals["rerun"])
    ratio = median([a / b for a, b in zip(totals["rag"], totals["mteb"], strict=True)])
    rerun_ratio = median([a / b for a, b in zip(totals["rerun"], totals["mteb"], strict=True)])
    worst = max(max(diffs.values()), max(rerun_diffs.values()))
    rows.append(["TOTAL", "", "", m, r, rr, ratio, rerun_ratio, worst, max(main_diffs.values())])
    print()
    print(table(["task", "type", "limits", "mteb s", "rag_eval s", "rerun s", "rag/mteb", "rerun/mteb",
                 "max|score diff|", "main score diff"], rows))
    print(f"\nratio rag_eval/mteb (median of {repeats} per-repetition total ratios): {ratio:.3f}  (target <= 0.8)")
    print(f"ratio rerun/mteb   (warm embedding cache):                   {rerun_ratio:.3f}")
    print(f"max |score difference| rag_eval vs mteb over all metrics: {worst:.3g}  (must be <= 1e-6)")
    for n, (_, detail) in WORST_METRIC.items():
        print(f"  largest difference in {n}: {detail}")
    ok = worst <= 1e-6
    print("scores: " + ("OK, identical within 1e-6" if ok else "MISMATCH > 1e-6"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
