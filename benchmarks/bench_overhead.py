"""(c) rag_eval wall time vs a bare ``model.encode()`` of the same unique texts.

1. Collect, per task, the texts rag_eval actually sends to the model: the run is replayed
   through rag_eval's own loading, sampling and ``CachingEncoder`` with a recording encoder
   that returns random vectors (so collecting costs no model time). These are the unique
   texts after ``limits`` (queries + corpus for retrieval/reranking, both sentence columns
   for STS / pair classification), exactly as mteb formats them.
2. Time ``run_task`` (one per task, fresh output folder, cold embedding cache).
3. Time ``SentenceTransformer(path)`` + ``model.encode(texts, batch_size=32)`` per task.

The ratio rag_eval / bare is everything rag_eval and mteb add on top of encoding (data loading,
sampling, hashing/caching, scoring, writing results). Target <= 1.15.

    .venv/bin/python benchmarks/bench_overhead.py            # 3 repetitions, same tasks as bench_vs_mteb
    .venv/bin/python benchmarks/bench_overhead.py --quick    # 1 repetition, small limits
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BATCH, Timer, fresh_dir, median, rag_cfg, start, table  # noqa: E402


class _Recorder:
    """Stands in for the mteb encoder: records the texts it is asked to encode, returns random vectors."""

    def __init__(self, encoder: Any):
        self._encoder = encoder
        self.texts: list[str] = []
        self._rng = np.random.default_rng(0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._encoder, name)

    def encode(self, inputs: Any, **kwargs: Any) -> np.ndarray:
        texts = [t for batch in inputs for t in batch["text"]]
        self.texts.extend(texts)
        vecs = self._rng.standard_normal((len(texts), 384)).astype(np.float32)
        return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def collect_texts(model_path: str, tasks) -> dict[str, list[str]]:
    from rag_eval.config import load_config
    from rag_eval.resolve.models import load_bi_encoder
    from rag_eval.resolve.tasks import resolve_tasks
    from rag_eval.stages.embedding_cache import CachingEncoder
    from rag_eval.stages.task_steps import evaluate_task, prepare_task

    out = fresh_dir("bench-overhead-collect-")
    found: dict[str, list[str]] = {}
    try:
        recorder = None
        caching = None
        for n, t, p, lim in tasks:
            run = load_config(rag_cfg(model_path, n, t, p, lim, out))
            if recorder is None:
                model = load_bi_encoder(run.bi_encoder)
                recorder = _Recorder(model.encoder)
                caching = CachingEncoder(recorder, out / "cache")  # one cache across tasks, as in a run
            task = resolve_tasks(run.eval)[0]
            prepare_task(task, run.eval)
            before = len(recorder.texts)
            evaluate_task(model, task, run.eval, encoder=caching)
            found[n] = recorder.texts[before:]
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return found


def main(argv: list[str] | None = None) -> int:
    args, repeats, model_path, tasks = start(argv, __doc__)
    texts = collect_texts(model_path, tasks)
    print("unique texts encoded per task: " + ", ".join(f"{n} {len(v)}" for n, v in texts.items()))

    from sentence_transformers import SentenceTransformer

    from rag_eval import run_task

    rag: dict[str, list[float]] = {n: [] for n, *_ in tasks}
    bare: dict[str, list[float]] = {n: [] for n, *_ in tasks}
    bare_encode: dict[str, list[float]] = {n: [] for n, *_ in tasks}
    for rep in range(repeats):
        out = fresh_dir("bench-overhead-")

        def do_rag(out=out):
            for n, t, p, lim in tasks:
                with Timer() as tm:
                    scores = run_task(rag_cfg(model_path, n, t, p, lim, out))
                if not scores.ok:
                    raise RuntimeError(scores.failed)
                rag[n].append(tm.seconds)

        def do_bare():
            for n, *_ in tasks:
                with Timer() as tm:
                    model = SentenceTransformer(model_path, device="cpu")
                    with Timer() as enc:
                        model.encode(texts[n], batch_size=BATCH, show_progress_bar=False)
                bare[n].append(tm.seconds)
                bare_encode[n].append(enc.seconds)

        for step in ((do_rag, do_bare) if rep % 2 == 0 else (do_bare, do_rag)):
            step()
        shutil.rmtree(out, ignore_errors=True)
        print(f"rep {rep + 1}/{repeats}: rag_eval {sum(v[-1] for v in rag.values()):.1f}s  "
              f"bare load+encode {sum(v[-1] for v in bare.values()):.1f}s", flush=True)

    rows = []
    for n, t, _, lim in tasks:
        r, b, e = median(rag[n]), median(bare[n]), median(bare_encode[n])
        rows.append([n, t, lim if lim is not None else "all", len(texts[n]), r, b, e, r / b, r / e])
    tot = {k: [sum(v[n][i] for n, *_ in tasks) for i in range(repeats)]
           for k, v in (("rag", rag), ("bare", bare), ("enc", bare_encode))}
    ratio = median([a / b for a, b in zip(tot["rag"], tot["bare"], strict=True)])
    ratio_enc = median([a / b for a, b in zip(tot["rag"], tot["enc"], strict=True)])
    rows.append(["TOTAL", "", "", sum(len(v) for v in texts.values()), median(tot["rag"]), median(tot["bare"]),
                 median(tot["enc"]), ratio, ratio_enc])
    print()
    print(table(["task", "type", "limits", "texts", "rag_eval s", "bare load+encode s", "bare encode s",
                 "rag/bare", "rag/encode-only"], rows))
    print(f"\nratio rag_eval / bare (load + encode), median of {repeats}: {ratio:.3f}  (target <= 1.15)")
    print(f"ratio rag_eval / bare encode only,       median of {repeats}: {ratio_enc:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
