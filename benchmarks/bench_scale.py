"""(d) rag_eval retrieval on a synthetic large corpus: wall time and peak memory.

The corpus is built from the real texts in ../shared/data (written to a temporary BEIR folder,
never into the repo): the 848 CMRC 2018 passages (the relevant documents) plus ``--docs - 848``
distractors, each 2-4 texts drawn (seeded) from LCQMC / ATEC sentences, waimai and
online-shopping reviews and CMRC passage sentences, with unique ids. ``--queries`` CMRC
questions with their qrels are the queries.

Model: ``--model static`` (default) is a Model2Vec static model built from all-MiniLM-L6-v2's
own input embeddings (so 100k documents encode in seconds on 2 CPUs); ``--model minilm`` is the
transformer itself (use ``--docs`` in the thousands and ``--max-seq-length`` to keep it short).

Memory: each ``--corpus-chunk-size`` value runs in its own process, which first imports torch,
sentence-transformers, mteb and rag_eval (the baseline: a host that calls ``run_task`` has them
loaded). The peak RSS, sampled from /proc/self/status every 50 ms during ``run_task``, minus the
RSS just before it, is compared with the size of the run's float32 vectors (the cache's arrays).

    .venv/bin/python benchmarks/bench_scale.py                    # 100,000 docs, 300 queries, static
    .venv/bin/python benchmarks/bench_scale.py --model minilm --docs 5000 --max-seq-length 128
    .venv/bin/python benchmarks/bench_scale.py --quick            # 5,000 docs, 50 queries, static
    .venv/bin/python benchmarks/bench_scale.py --corpus-chunk-size 0 10000   # mteb's 50,000 vs 10,000
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BATCH, DATA, Timer, fresh_dir, machine, minilm_path, table  # noqa: E402

STATIC_DIR = Path.home() / ".cache" / "rag_eval-bench" / "static-minilm"


def _jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def text_pool() -> list[str]:
    pool: list[str] = []
    for row in _jsonl(DATA / "sts/lcqmc-zh/test.jsonl") + _jsonl(DATA / "pair_classification/atec-zh/test.jsonl"):
        pool += [row["sentence1"], row["sentence2"]]
    for f in ("classification/waimai-zh/train.jsonl", "classification/waimai-zh/test.jsonl",
              "clustering/online-shopping-zh/test.jsonl"):
        pool += [row["text"] for row in _jsonl(DATA / f)]
    for row in _jsonl(DATA / "retrieval/cmrc2018-zh/corpus.jsonl"):
        pool += [s for s in re.split(r"(?<=[。！？])", row["text"]) if len(s) > 4]
    return sorted({t.strip() for t in pool if t and t.strip()})


def build_corpus(folder: Path, n_docs: int, n_queries: int, seed: int) -> dict[str, int]:
    src = DATA / "retrieval/cmrc2018-zh"
    passages = _jsonl(src / "corpus.jsonl")
    queries = {q["_id"]: q["text"] for q in _jsonl(src / "queries.jsonl")}
    qrels = [line.rstrip("\n").split("\t") for line in (src / "qrels/dev.tsv").read_text().splitlines()[1:]]
    rng = random.Random(seed)
    pool = text_pool()
    (folder / "qrels").mkdir(parents=True)
    total_chars = 0
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for p in passages:
            fh.write(json.dumps({"_id": p["_id"], "title": p.get("title", ""), "text": p["text"]},
                                ensure_ascii=False) + "\n")
            total_chars += len(p["text"])
        for i in range(max(0, n_docs - len(passages))):
            text = "".join(rng.sample(pool, rng.randint(2, 4)))
            total_chars += len(text)
            fh.write(json.dumps({"_id": f"syn-{i:06d}", "title": "", "text": text}, ensure_ascii=False) + "\n")
    qids = sorted({q for q, _, _ in qrels if q in queries})
    chosen = set(rng.sample(qids, min(n_queries, len(qids))))
    with (folder / "queries.jsonl").open("w", encoding="utf-8") as fh:
        for qid in sorted(chosen):
            fh.write(json.dumps({"_id": qid, "text": queries[qid]}, ensure_ascii=False) + "\n")
    kept = [r for r in qrels if r[0] in chosen]
    (folder / "qrels/test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join("\t".join(r) + "\n" for r in kept))
    n_total = max(n_docs, len(passages))
    return {"docs": n_total, "queries": len(chosen), "qrels": len(kept), "pool": len(pool),
            "avg_doc_chars": round(total_chars / n_total)}


def static_model() -> str:
    if (STATIC_DIR / "config.json").is_file():
        return str(STATIC_DIR)
    from model2vec import StaticModel
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

    path = minilm_path()
    st = SentenceTransformer(path, device="cpu")
    vectors = st[0].auto_model.get_input_embeddings().weight.detach().numpy()
    StaticModel(vectors=vectors, tokenizer=Tokenizer.from_file(f"{path}/tokenizer.json"),
                normalize=True).save_pretrained(str(STATIC_DIR))
    return str(STATIC_DIR)


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler(threading.Thread):
    def __init__(self, every: float = 0.05):
        super().__init__(daemon=True)
        self.every, self.peak, self._halt = every, _rss_mib(), threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.every):
            self.peak = max(self.peak, _rss_mib())

    def stop(self) -> float:
        self._halt.set()
        self.join()
        return max(self.peak, _rss_mib())


def measure(data: Path, model: dict, chunk: int | None) -> dict:
    """One cold run_task and one warm rerun on the corpus in ``data`` (run in its own process, see main)."""
    import mteb  # noqa: F401  (the baseline process has its libraries imported: a plugin host has them)
    import sentence_transformers  # noqa: F401
    import torch  # noqa: F401

    import rag_eval  # noqa: F401
    from rag_eval import run_task

    out = fresh_dir("bench-scale-out-")
    try:
        cfg = {"model": model,
               "eval": {"tasks": [{"name": "SyntheticScaleRetrieval", "type": "Retrieval", "path": str(data)}],
                        "output_folder": str(out), "verbosity": 0, "top_k": 100, "corpus_chunk_size": chunk}}
        rss_before = _rss_mib()
        sampler = RssSampler()
        sampler.start()
        t0 = time.perf_counter()
        scores = run_task(cfg)
        seconds = time.perf_counter() - t0
        rss_peak = sampler.stop()
        if not scores.ok:
            return {"failed": str(scores.failed)}
        rerun_before = _rss_mib()
        sampler = RssSampler()
        sampler.start()
        with Timer() as rerun:
            run_task(cfg)  # same folder: embeddings come from the cache
        rerun_peak = sampler.stop()
        import numpy as np
        shapes = [np.load(f, mmap_mode="r").shape for f in (out / ".cache").rglob("chunk-*.npy")]
        split = next(iter(scores["SyntheticScaleRetrieval"]))
        return {"seconds": seconds, "rerun_seconds": rerun.seconds, "rss_before": rss_before, "rss_peak": rss_peak,
                "rerun_before": rerun_before, "rerun_peak": rerun_peak,
                "vector_mib": sum(r * c * 4 for r, c in shapes) / 2**20, "dim": shapes[0][1],
                "ndcg_at_10": scores["SyntheticScaleRetrieval"][split]["ndcg_at_10"]}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=100_000, help="corpus size (default 100000)")
    ap.add_argument("--queries", type=int, default=300, help="number of queries (default 300)")
    ap.add_argument("--model", choices=("static", "minilm"), default="static",
                    help="static: Model2Vec built from MiniLM's input embeddings (default); minilm: the transformer")
    ap.add_argument("--max-seq-length", type=int, default=None, help="max_seq_length for --model minilm")
    ap.add_argument("--batch-size", type=int, default=None, help="encode batch size (default 32 minilm, 256 static)")
    ap.add_argument("--corpus-chunk-size", type=int, nargs="*", default=[0],
                    help="eval.corpus_chunk_size values, one run (own process) each; 0: null (mteb's 50,000)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    ap.add_argument("--quick", action="store_true", help="5000 docs, 50 queries (smoke run)")
    ap.add_argument("--measure", nargs=3, metavar=("DATA", "MODEL_JSON", "CHUNK"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.measure:  # the child: one configuration, its figures as one JSON line
        data, model, chunk = args.measure
        print("RESULT " + json.dumps(measure(Path(data), json.loads(model), int(chunk) or None)))
        return 0
    if args.quick:
        args.docs, args.queries = min(args.docs, 5000), min(args.queries, 50)
    print(machine())
    data = fresh_dir("bench-scale-data-")
    try:
        with Timer() as build:
            info = build_corpus(data, args.docs, args.queries, args.seed)
        print(f"synthetic corpus in {data}: {info} (built in {build.seconds:.1f}s)")
        if args.model == "static":
            model = {"model_name_or_path": static_model(), "name": "static-minilm", "model_type": "static"}
            batch = args.batch_size or 256
        else:
            model = {"model_name_or_path": minilm_path(), "name": "minilm"}
            if args.max_seq_length:
                model["max_seq_length"] = args.max_seq_length
            batch = args.batch_size or BATCH
        model["encode_kwargs"] = {"batch_size": batch}
        rows = []
        for chunk in args.corpus_chunk_size:
            proc = subprocess.run([sys.executable, __file__, "--measure", str(data), json.dumps(model), str(chunk)],
                                  capture_output=True, text=True, check=False)
            line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if proc.returncode or line is None:
                print(f"FAILED (chunk {chunk}): {proc.stderr[-2000:]}")
                return 1
            r = json.loads(line[len("RESULT "):])
            if "failed" in r:
                print(f"FAILED (chunk {chunk}): {r['failed']}")
                return 1
            peak = r["rss_peak"] - r["rss_before"]
            rows.append([info["docs"], info["queries"], args.model, batch, chunk or "null (50,000)", r["seconds"],
                         info["docs"] / r["seconds"], r["rerun_seconds"], r["rss_before"], r["rss_peak"], peak,
                         r["vector_mib"], peak / r["vector_mib"], r["rerun_peak"] - r["rerun_before"],
                         (r["rerun_peak"] - r["rerun_before"]) / r["vector_mib"], r["ndcg_at_10"]])
        print()
        print(table(["docs", "queries", "model", "batch", "corpus_chunk_size", "run_task s", "docs/s", "rerun s",
                     "RSS before MiB", "RSS peak MiB", "peak-before MiB", "float32 vectors MiB", "peak/vectors",
                     "rerun peak-before MiB", "rerun peak/vectors", "ndcg@10"], rows))
        print(f"\nmeasured: each row in its own process, after importing torch, sentence-transformers, mteb and "
              f"rag_eval (the baseline); one rag_eval run_task (model load + data load + encode {info['docs']} docs "
              f"and {info['queries']} queries + mteb search/scoring + result files) on a cold embedding cache, then "
              "'rerun' = the same run with the cache warm. RSS sampled every 50 ms; vectors = the cache's float32 "
              "arrays (documents + queries).")
    finally:
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
