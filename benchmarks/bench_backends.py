"""Issue 30: the inference backends side by side in one run (docs/BENCHMARKS.md records the figures).

(1) cold one-stage on the benchmark tasks (benchmarks/_common.py TASKS), per task and in total: plain
    ``mteb.evaluate`` fp32 (sentence-transformers on torch) vs rag_eval on each ``--configs`` entry
    (``backend:precision``; default torch fp32, onnx fp32, openvino fp32, openvino bf16, onnx int8), each
    into a fresh output folder: time ratio vs mteb and the largest main-score difference.
(2) the cross-encoder in a two-stage Cranfield run (ms-marco MiniLM-L-12), each configuration's reranker
    behind the same torch MiniLM stage 1 (its embeddings copied in, so the time is the reranking's):
    time ratio vs the torch fp32 reranker and the largest stage-2 main-score difference.

A configuration the runtime refuses on this CPU (openvino bf16 without AVX512-BF16 / AMX) prints its
one-line refusal instead of figures. The ONNX exports are made before timing (in RAG_EVAL_EXPORT_CACHE,
default a temporary folder) and their one-off cost printed: a cold run here is a cold embedding / score
cache, as for mteb. The order of the configurations rotates between repetitions.

    .venv/bin/python benchmarks/bench_backends.py --quick          # small limits, 1 repetition
    .venv/bin/python benchmarks/bench_backends.py --repeats 3      # full benchmark limits
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DATA, Timer, fresh_dir, median, rag_cfg, start, table  # noqa: E402
from bench_vs_mteb import main_diff, run_mteb  # noqa: E402

MODELS = Path(os.environ.get("RAG_EVAL_MODELS", Path.home() / ".cache" / "rag_eval-test-models"))
RERANKER = {"model_name_or_path": str(MODELS / "ms-marco-minilm-l12"), "is_cross_encoder": True,
            "name": "ms-marco", "max_seq_length": 256, "encode_kwargs": {"batch_size": 32}}
TASK = {"name": "Cranfield", "type": "Retrieval", "path": str(DATA / "retrieval/cranfield-en")}
DEFAULT_CONFIGS = "torch:fp32,onnx:fp32,openvino:fp32,openvino:bf16,onnx:int8"


def _model(backend: str, precision: str) -> dict:
    return {"backend": backend, "precision": None if precision == "fp32" else precision}


def _prepare(configs: list[tuple[str, str]], model_path: str) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Load every configuration once (exports made here, timed apart); the refused ones with their line."""
    from rag_eval.config import load_config
    from rag_eval.errors import ConfigError
    from rag_eval.resolve.models import load_bi_encoder, load_cross_encoder

    usable, refused = [], {}
    for backend, precision in configs:
        try:
            cfg = load_config({"model": {"model_name_or_path": model_path, **_model(backend, precision)},
                               "reranker": {**RERANKER, **_model(backend, precision)}, "eval": {"tasks": [TASK]}})
            with Timer() as t:
                load_bi_encoder(cfg.bi_encoder)
                load_cross_encoder(cfg.cross_encoder)
        except ConfigError as exc:
            refused[f"{backend} {precision}"] = str(exc)
            continue
        print(f"{backend} {precision}: both models loaded (export / compile included) in {t.seconds:.1f}s",
              flush=True)
        usable.append((backend, precision))
    return usable, refused


def main(argv: list[str] | None = None) -> int:
    import argparse

    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--configs", default=DEFAULT_CONFIGS)
    own.add_argument("--rerank-queries", type=int, default=20)
    own.add_argument("--rerank-docs", type=int, default=300)
    own.add_argument("--top-k", type=int, default=20)
    own.add_argument("--parts", default="1,2", help="which comparisons to run: 1 (one-stage), 2 (cross-encoder)")
    own.add_argument("--skip-tasks", default="", help="comma list of benchmark task names to leave out of (1)")
    mine, rest = own.parse_known_args(argv)
    os.environ.setdefault("RAG_EVAL_EXPORT_CACHE", tempfile.mkdtemp(prefix="bench-exports-"))
    args, repeats, model_path, tasks = start(rest, __doc__)
    tasks = [t for t in tasks if t[0] not in mine.skip_tasks.split(",")]
    flags = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    flags = next((line.split(":", 1)[1].split() for line in flags.splitlines() if line.startswith("Flags")), [])
    print("cpu flags (bf16 / avx512 / amx): "
          + (" ".join(f for f in flags if "bf16" in f or "avx512" in f or "amx" in f) or "none"))
    import onnxruntime
    import openvino

    print(f"onnxruntime {onnxruntime.__version__}, openvino {openvino.__version__}")
    configs = [tuple(c.split(":")) for c in mine.configs.split(",")]
    configs, refused = _prepare(configs, model_path)
    for name, line in refused.items():
        print(f"{name}: refused: {line}")
    if "1" in mine.parts.split(","):
        _one_stage(configs, repeats, model_path, tasks)
    if "2" in mine.parts.split(","):
        _cross_encoder(configs, repeats, model_path, mine)
    return 0


def _one_stage(configs: list, repeats: int, model_path: str, tasks: list) -> None:
    """(1): cold one-stage runs of each configuration vs plain mteb fp32."""
    from rag_eval import run_task

    keys = ["mteb", *configs]
    times = {k: {n: [] for n, *_ in tasks} for k in keys}
    diffs = {k: 0.0 for k in configs}
    task_diffs = {(k, n): 0.0 for k in configs for n, *_ in tasks}
    for rep in range(repeats):
        order = keys[rep % len(keys):] + keys[:rep % len(keys)]
        ref, ours = {}, {}
        for key in order:
            out = fresh_dir("bench-backends-")
            for n, t, p, lim in tasks:
                if key == "mteb":
                    sec, ref[n] = run_mteb(model_path, n, t, p, lim)
                else:
                    with Timer() as timer:
                        scores = run_task(rag_cfg(model_path, n, t, p, lim, out, **_model(*key)))
                    if not scores.ok:
                        raise RuntimeError(f"{key} failed: {scores.failed}")
                    sec, ours[key, n] = timer.seconds, scores[n]
                times[key][n].append(sec)
            shutil.rmtree(out, ignore_errors=True)
        for key in configs:
            for n, *_ in tasks:
                task_diffs[key, n] = max(task_diffs[key, n], main_diff(ours[key, n], ref[n]))
            diffs[key] = max(task_diffs[key, n] for n, *_ in tasks)
        print(f"rep {rep + 1}/{repeats}: " + ", ".join(
            f"{k if k == 'mteb' else ' '.join(k)} {sum(times[k][n][-1] for n, *_ in tasks):.1f}s" for k in keys),
            flush=True)
    totals = {k: [sum(times[k][n][i] for n, *_ in tasks) for i in range(repeats)] for k in keys}
    rows = [["plain mteb.evaluate (torch fp32)", median(totals["mteb"]), 1.0, 0.0]]
    rows += [[f"rag_eval {b} {p}", median(totals[b, p]),
              median([a / m for a, m in zip(totals[b, p], totals["mteb"], strict=True)]), diffs[b, p]]
             for b, p in configs]
    print("\n(1) one-stage, tasks " + ", ".join(f"{n} ({lim or 'all'})" for n, _, _, lim in tasks))
    print(table(["encoder", "total s", "time / mteb", "max |main score diff| vs mteb"], rows))
    per_task = [[n, median(times["mteb"][n]), *(median(times[k][n]) / median(times["mteb"][n]) for k in configs)]
                for n, *_ in tasks]
    print(table(["task", "mteb s", *(f"{b} {p} / mteb" for b, p in configs)], per_task))
    print(table(["task", *(f"{b} {p} main diff" for b, p in configs)],
                [[n, *(task_diffs[k, n] for k in configs)] for n, *_ in tasks]))


def _cross_encoder(configs: list, repeats: int, model_path: str, mine) -> None:
    """(2): the reranker on each configuration behind the same cached torch stage 1."""
    from rag_eval import run_task

    ev = {"tasks": [TASK], "limits": mine.rerank_queries, "corpus_size": mine.rerank_docs, "top_k": mine.top_k,
          "verbosity": 0}
    stage1 = {"model_name_or_path": model_path, "name": "minilm", "encode_kwargs": {"batch_size": 32}}
    seed = fresh_dir("bench-backends-seed-")
    run_task({"model": stage1, "eval": {**ev, "output_folder": str(seed)}})  # stage-1 embeddings, once
    ce_times = {k: [] for k in configs}
    ce_scores = {}
    for rep in range(repeats):
        for key in configs[rep % len(configs):] + configs[:rep % len(configs)]:
            out = fresh_dir("bench-backends-ce-")
            shutil.copytree(seed / ".cache" / "embeddings", out / ".cache" / "embeddings")
            with Timer() as timer:
                scores = run_task({"model": stage1, "reranker": {**RERANKER, **_model(*key)},
                                   "eval": {**ev, "output_folder": str(out)}})
            if not scores.ok:
                raise RuntimeError(f"{key} failed: {scores.failed}")
            ce_times[key].append(timer.seconds)
            ce_scores[key] = scores["Cranfield"]["stage2"]
            shutil.rmtree(out, ignore_errors=True)
    base = ("torch", "fp32")
    rows = [[f"{b} {p}", median(ce_times[b, p]),
             median([a / m for a, m in zip(ce_times[b, p], ce_times[base], strict=True)]) if base in ce_times
             else float("nan"),
             main_diff(ce_scores[b, p], ce_scores[base]) if base in ce_scores else float("nan")]
            for b, p in configs]
    print(f"\n(2) two-stage Cranfield, {mine.rerank_queries} queries, {mine.rerank_docs} documents, top_k "
          f"{mine.top_k}: the reranker on each configuration (stage-1 embeddings cached)")
    print(table(["reranker", "two-stage s", "time / torch fp32", "max |stage-2 main score diff|"], rows))
    shutil.rmtree(seed, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
