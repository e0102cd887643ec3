"""The retrieval-stack matrix on CMRC 2018 (zh): BM25, MiniLM, multilingual-e5-small and a BM25+e5 hybrid,
each alone and reranked by the ms-marco cross-encoder, into one output folder; prints matrix.csv.

Not a test: it measures (README records the table). e5-small and the reranker are the models
../shared/models/build_models.py rebuilds into $RAG_EVAL_MODELS (the tests build them on first use).

    .venv/bin/python benchmarks/run_matrix.py [--limits 100] [--top-k 20] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

from _common import DATA, minilm_path

MODELS = Path(os.environ.get("RAG_EVAL_MODELS", Path.home() / ".cache" / "rag_eval-test-models"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limits", type=int, default=100, help="CMRC queries (all 848 passages are searched)")
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--out", default="/tmp/rag_eval-matrix")
    args = parser.parse_args()

    from rag_eval import run_task

    e5 = str(MODELS / "multilingual-e5-small")
    bm25 = {"model_type": "bm25", "name": "bm25-zh", "model_kwargs": {"tokenizer": "char", "stopwords": "zh"}}
    retrievers = {
        "bm25-zh": bm25,
        "minilm": {"model_name_or_path": minilm_path(), "name": "all-MiniLM-L6-v2"},
        "e5-small": {"model_name_or_path": e5, "name": "multilingual-e5-small", "max_seq_length": 512},
        "hybrid": {"model_type": "hybrid", "name": "hybrid-rrf-bm25+e5", "hybrid": {
            "models": [bm25, {"model_name_or_path": e5, "name": "multilingual-e5-small", "max_seq_length": 512}]}},
    }
    reranker = {"model_name_or_path": str(MODELS / "ms-marco-minilm-l12"), "is_cross_encoder": True,
                "name": "ms-marco-MiniLM-L-12-v2", "max_seq_length": 512}
    task = {"name": "CmrcRetrieval", "type": "Retrieval", "path": str(DATA / "retrieval/cmrc2018-zh")}
    ev = {"tasks": [task], "limits": args.limits, "top_k": args.top_k, "output_folder": args.out, "verbosity": 0}
    for name, model in retrievers.items():
        start = time.monotonic()
        scores = run_task({"model": model, "reranker": reranker, "eval": ev})
        print(f"{name}: {time.monotonic() - start:.0f} s, ok={scores.ok}", file=sys.stderr)
    with (Path(args.out) / "matrix.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    cols = ("retriever", "reranker", "top_k", "stage1_score", "stage1_recall_at_top_k", "stage2_score", "gain",
            "stage1_queries_per_s", "stage2_queries_per_s")
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(r[c] for c in cols) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
