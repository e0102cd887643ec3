"""``eval.limits`` as rag_eval samples it and as EvalScope does, side by side on one task, in one run.

MiniLM on CMRC 2018 (Retrieval, dev: 3,219 queries, 848 passages) with ``limits`` queries:

* ``seeded`` (rag_eval's default): ``limits`` queries drawn with the seed, the whole corpus searched
  (every other passage is a distractor);
* ``evalscope``: the first ``limits`` queries of the file, the corpus cut to the passages judged for
  them (EvalScope's ModelScope loader), so the search has fewer wrong answers to fall for.

The gap between the two rows is how much EvalScope's sample inflates the score at this ``limits``.

    .venv/bin/python benchmarks/bench_limits_mode.py              # limits 100
    .venv/bin/python benchmarks/bench_limits_mode.py --limits 100 300
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DATA, fresh_dir, minilm_path, table  # noqa: E402

METRICS = ("ndcg_at_10", "recall_at_10", "mrr_at_10")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limits", type=int, nargs="+", default=[100])
    parser.add_argument("--task", default="retrieval/cmrc2018-zh")
    args = parser.parse_args()
    from rag_eval import run_task

    out, rows = fresh_dir("rag_eval-limits-mode-"), []
    task = {"name": "CMRC2018", "type": "Retrieval", "path": str(DATA / args.task), "split": "dev"}
    for limits in args.limits:
        scores = {}
        for mode in ("seeded", "evalscope"):
            run = run_task({"model": {"model_name_or_path": minilm_path(), "name": "minilm"},
                            "eval": {"tasks": [task], "limits": limits, "limits_mode": mode,
                                     "output_folder": str(out / f"{mode}-{limits}"), "verbosity": 0}})
            [outcome] = run.outcomes
            scores[mode] = run["CMRC2018"]["dev"]
            rows.append([limits, mode, outcome.sample["queries"], outcome.sample["corpus"],
                         *(scores[mode][m] for m in METRICS)])
        rows.append([limits, "evalscope - seeded", "", "",
                     *(scores["evalscope"][m] - scores["seeded"][m] for m in METRICS)])
    print(table(["limits", "limits_mode", "queries", "corpus", *METRICS], rows))
    print(f"results under {out}")


if __name__ == "__main__":
    main()
