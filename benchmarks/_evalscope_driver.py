"""Subprocess driver for bench_vs_evalscope.py: one timed ``run_task`` in a fresh interpreter.

    <python> benchmarks/_evalscope_driver.py {evalscope|rag_eval} CONFIG.json

``evalscope`` runs under EvalScope's own venv (``evalscope.run.run_task``), ``rag_eval`` under
the project venv (``rag_eval.run_task``). The heavy libraries (torch, mteb,
sentence-transformers) and the backend's own modules are imported first and timed as
``import_s``; ``run_s`` is the wall time of ``run_task`` alone. Then the main scores are read
back from the result files (EvalScope's ``run_task`` returns no scores). The last stdout line
is one JSON object. Only the standard library is imported at module level, so one file
serves both venvs.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def _scores_from_files(folder: Path, task: str) -> dict:
    """``{"stage1"|"stage2"|"one": {metric: value}}`` from the mteb result files under ``folder``."""
    out: dict = {}
    for path in sorted(folder.rglob(f"{task}.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        scores = data.get("scores", {})
        split = next(iter(scores), None)
        if split is None or not scores[split]:
            continue
        stage = "stage2" if "stage2" in path.parts else "stage1" if "stage1" in path.parts else "one"
        entry = scores[split][0]
        out[stage] = {k: v for k, v in entry.items() if isinstance(v, (int, float))}
    return out


def main() -> int:
    backend, cfg_path = sys.argv[1], Path(sys.argv[2])
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    task = cfg.pop("_task")
    out = Path(cfg.pop("_out"))

    t = time.perf_counter()
    import mteb  # noqa: F401
    import sentence_transformers  # noqa: F401
    import torch  # noqa: F401

    if backend == "evalscope":
        import evalscope.backend.rag_eval.backend_manager  # noqa: F401
        import evalscope.backend.rag_eval.models  # noqa: F401
        import evalscope.backend.rag_eval.mteb  # noqa: F401
        from evalscope.run import run_task
    else:
        import rag_eval.pipeline  # noqa: F401
        import rag_eval.stages.runner  # noqa: F401
        from rag_eval import run_task
    import_s = time.perf_counter() - t

    t = time.perf_counter()
    result = run_task(cfg)
    run_s = time.perf_counter() - t

    if backend == "rag_eval":
        if not result.ok:
            raise SystemExit(f"rag_eval failed: {result.failed}")
        stages = result[task]
        scores = ({"one": next(iter(stages.values()))} if "stage1" not in stages
                  else {s: next(iter(v.values())) for s, v in stages.items()})
    else:
        scores = _scores_from_files(out, task)
    print(json.dumps({"import_s": import_s, "run_s": run_s,
                      "scores": {k: {m: v for m, v in s.items() if isinstance(v, (int, float))}
                                 for k, s in scores.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
