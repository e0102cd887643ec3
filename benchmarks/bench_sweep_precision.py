"""Issue 16's ratios, measured side by side in one run (docs/BENCHMARKS.md records them).

(s) a two-stage top_k sweep ``[10, 20, 50, 100]`` vs the single ``top_k: 100`` run, both cold
    (fresh output folders): the sweep scores each pair once, so the target is <= 1.2x;
(w) a warm two-stage rerun (embedding and score caches in place, results removed) vs the cold run;
(p) a cold one-stage run at each ``--precision`` (default bf16; e.g. ``bf16,int8,fp32``) vs plain mteb
    fp32 on the same task, with the main-score difference (a precision counts only within 1e-3).

Cranfield (en) from ../shared/data, all-MiniLM-L6-v2 and the ms-marco MiniLM-L-12 cross-encoder.
Not a test: prints a table.

    .venv/bin/python benchmarks/bench_sweep_precision.py [--queries 20] [--docs 300] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from _common import DATA, fresh_dir, median, minilm_path, warm_up

MODELS = Path(os.environ.get("RAG_EVAL_MODELS", Path.home() / ".cache" / "rag_eval-test-models"))


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--docs", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--skip", default="", help="comma list of s,w,p to skip")
    ap.add_argument("--precision", default="bf16", help="comma list of model.precision values for (p)")
    args = ap.parse_args()

    import mteb
    from sentence_transformers import SentenceTransformer

    from rag_eval import run_task
    from rag_eval.config import load_config
    from rag_eval.resolve.tasks import resolve_task
    from rag_eval.stages.task_steps import prepare_task

    model = minilm_path()
    warm_up(model)
    task = {"name": "Cranfield", "type": "Retrieval", "path": str(DATA / "retrieval/cranfield-en")}
    reranker = {"model_name_or_path": str(MODELS / "ms-marco-minilm-l12"), "is_cross_encoder": True,
                "name": "ms-marco", "max_seq_length": 256}

    def two_stage(top_k, out):
        ev = {"tasks": [task], "limits": args.queries, "corpus_size": args.docs, "top_k": top_k,
              "output_folder": str(out), "verbosity": 0}
        return run_task({"model": {"model_name_or_path": model, "name": "minilm"}, "reranker": reranker, "eval": ev})

    rows = []
    skip = set(args.skip.split(","))
    if "s" not in skip or "w" not in skip:
        single, sweep, warm = [], [], []
        for _ in range(args.repeats):
            out = fresh_dir("sweep-single-")
            single.append(timed(lambda out=out: two_stage(100, out))[0])
            if "w" not in skip:  # results removed, caches kept: what a rerun with a new metric or report costs
                for folder in ("stage1", "stage2"):
                    shutil.rmtree(out / folder)
                warm.append(timed(lambda out=out: two_stage(100, out))[0])
            if "s" not in skip:
                sweep.append(timed(lambda: two_stage([10, 20, 50, 100], fresh_dir("sweep-4-")))[0])
        if sweep:
            rows.append(("(s) sweep [10,20,50,100] / single top_k=100, cold", median(sweep), median(single)))
        if warm:
            rows.append(("(w) two-stage warm rerun / cold, top_k=100", median(warm), median(single)))

    if "p" not in skip:
        ev = {"tasks": [task], "limits": args.queries, "corpus_size": args.docs, "verbosity": 0}
        cfg = load_config({"model": {"model_name_or_path": model}, "eval": ev}).eval
        prepared = resolve_task(task, cfg, "bench")
        prepare_task(prepared, cfg)
        precisions = args.precision.split(",")
        ref_t, ref = [], None
        ours_t: dict[str, list[float]] = {p: [] for p in precisions}
        ours: dict[str, float] = {}
        for _ in range(args.repeats):  # mteb fp32, then each precision, side by side in each repetition
            wrapper = mteb.models.SentenceTransformerEncoderWrapper(SentenceTransformer(model, device="cpu"))
            t, res = timed(lambda w=wrapper: mteb.evaluate(w, prepared, cache=None, show_progress_bar=False,
                                                           co2_tracker=False, encode_kwargs={"batch_size": 32}))
            ref_t.append(t)
            ref = res.task_results[0].get_score()
            for precision in precisions:
                t, res = timed(lambda p=precision: run_task(
                    {"model": {"model_name_or_path": model, "precision": p},
                     "eval": {**ev, "output_folder": str(fresh_dir(f"{p}-"))}}))
                ours_t[precision].append(t)
                ours[precision] = res["Cranfield"]["test"]["ndcg_at_10"]
        for precision in precisions:
            rows.append((f"(p) one-stage {precision} / mteb fp32 (ndcg@10 {ours[precision]:.5f} vs {ref:.5f}, "
                         f"diff {abs(ours[precision] - ref):.1e})", median(ours_t[precision]), median(ref_t)))

    print(f"\nCranfield, {args.queries} queries, {args.docs} documents, {args.repeats} repetition(s), "
          f"{os.cpu_count()} CPUs\n")
    print("| comparison | ours s | reference s | ratio |\n|---|---|---|---|")
    for name, ours_s, ref_s in rows:
        print(f"| {name} | {ours_s:.1f} | {ref_s:.1f} | {ours_s / ref_s:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
