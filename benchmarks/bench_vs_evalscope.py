"""(b) rag_eval wall time vs EvalScope's RAGEval MTEB backend, one-stage and two-stage, on Cranfield.

EvalScope (1.14.1) runs in its own venv (default ``../evalscope-venv`` next to the repo, see
``--evalscope-python`` and README's Benchmarks section for the install),
offline, with the same local model(s) and data as rag_eval. Per repetition, fresh output folders:

* ``EvalScope``: a subprocess (``_evalscope_driver.py``) calls ``evalscope.run.run_task`` with
  ``eval_backend: RAGEval``, ``tool: MTEB`` and a ``custom_tasks`` entry. The driver imports
  torch / mteb / sentence-transformers / evalscope first (``import s``, reported apart), then
  times ``run_task`` alone (``run s``); ``total s`` is the whole subprocess, startup included.
* ``rag_eval``: ``run_task`` in this process (imports and one encode warmed up beforehand), and
  the same driver under the project venv, timed exactly like EvalScope (``--no-subprocess`` skips it).
* one-stage = all-MiniLM-L6-v2 alone; two-stage = MiniLM retrieves ``top_k`` per query and the
  ms-marco-MiniLM-L-12 cross-encoder reranks them (EvalScope: the second model has
  ``is_cross_encoder: true``; rag_eval: ``reranker``). Same ``top_k`` on both sides (default 10).

Sampling: EvalScope ignores ``limits`` for a custom task (``build_custom_task`` marks the data as
loaded, so its limiting loader never runs; ``limits`` only caps ModelScope-hub tasks, by taking
the first N queries and shrinking the corpus to their judged documents). So the script writes the
sample in EvalScope's layout (``corpus.jsonl``, ``queries.jsonl``, ``qrels.jsonl``) into a temp folder,
drawn with rag_eval's own seeded sampler, and rag_eval reads the untouched Cranfield folder with
``limits`` = the number of queries and ``corpus_size`` = the number of documents: both sides
then see the same queries and documents (the script checks that all scores agree within 1e-6).
The bi-encoder's ``max_seq_length`` is pinned on both sides (EvalScope's default is 512, rag_eval
keeps the model's own 256 unless told).

Cost on 2 CPU cores is mostly the cross-encoder (queries x top_k pairs of up to 512 tokens) and the
corpus encoding, so the default sample is small: about 3-4 minutes per repetition.

    .venv/bin/python benchmarks/bench_vs_evalscope.py           # 3 repetitions, 20 queries, 200 docs
    .venv/bin/python benchmarks/bench_vs_evalscope.py --quick   # 1 repetition, 10 queries, 100 docs
    .venv/bin/python benchmarks/bench_vs_evalscope.py --full    # whole Cranfield (225 q, 1,400 docs): ~30 min/rep
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    BATCH,
    DATA,
    ROOT,
    Timer,
    fresh_dir,
    machine,
    median,
    metric_diff,
    minilm_path,
    rag_cfg,
    table,
    warm_up,
)

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "_evalscope_driver.py"
TASK, FOLDER = "CranfieldEn", "retrieval/cranfield-en"
SEED = 42  # rag_eval's default eval.seed
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "LANGCHAIN_TRACING_V2": "false", "LANGSMITH_TRACING": "false"}
BI_MAX_LEN, CE_MAX_LEN = 256, 512  # all-MiniLM-L6-v2's own limit; the cross-encoder's 512 positions


def default_reranker() -> str:
    return str(Path.home() / ".cache" / "rag_eval-test-models" / "ms-marco-minilm-l12")


def write_sample(dest: Path, n_queries: int | None, n_docs: int | None) -> tuple[int, int]:
    """Cranfield in EvalScope's custom layout, sampled by rag_eval itself.

    The task is loaded and sampled by the very step a run takes (``prepare_task``: rag_eval's seeded
    ``limits`` / ``corpus_size`` sampler, with the config :func:`rag_eval_cfg` gives the rag_eval side), so a
    change to the sampler changes both sides alike; the kept queries, documents and qrels are then written
    from the original files, in file order (qrels in the sample's query order). Returns (queries, documents).
    """
    from rag_eval.config import load_config
    from rag_eval.resolve.tasks import resolve_tasks
    from rag_eval.stages.task_steps import prepare_task

    run = load_config(rag_eval_cfg(minilm_path(), None, n_queries, n_docs, dest / "unused", 10))
    [task] = resolve_tasks(run.eval)
    prepare_task(task, run.eval)
    [split] = task.eval_splits
    sampled = task.dataset["default"][split]

    src = DATA / FOLDER
    corpus = [json.loads(line) for line in (src / "corpus.jsonl").read_text(encoding="utf-8").splitlines() if line]
    queries = [json.loads(line) for line in (src / "queries.jsonl").read_text(encoding="utf-8").splitlines() if line]
    relevant: dict[str, dict[str, int]] = {}
    with (src / "qrels" / "test.tsv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            relevant.setdefault(row["query-id"], {})[row["corpus-id"]] = int(float(row["score"]))
    keep = [str(q) for q in sampled["relevant_docs"] if relevant.get(str(q))]
    keep_set = set(keep)
    keep_docs = {str(d) for d in sampled["corpus"]["id"]}
    dest.mkdir(parents=True, exist_ok=True)
    with (dest / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for d in corpus:
            if str(d["_id"]) in keep_docs:
                fh.write(json.dumps(d, ensure_ascii=False) + "\n")
    with (dest / "queries.jsonl").open("w", encoding="utf-8") as fh:
        for q in queries:
            if str(q["_id"]) in keep_set:
                fh.write(json.dumps(q, ensure_ascii=False) + "\n")
    with (dest / "qrels.jsonl").open("w", encoding="utf-8") as fh:
        for q in keep:
            for d, score in relevant[q].items():
                fh.write(json.dumps({"query-id": q, "corpus-id": d, "score": score}) + "\n")
    return len(keep), len(keep_docs)


def evalscope_cfg(model: str, reranker: str | None, data: Path, out: Path, top_k: int) -> dict[str, Any]:
    models = [{"model_name_or_path": model, "max_seq_length": BI_MAX_LEN, "encode_kwargs": {"batch_size": BATCH}}]
    if reranker:
        models.append({"model_name_or_path": reranker, "is_cross_encoder": True, "max_seq_length": CE_MAX_LEN,
                       "encode_kwargs": {"batch_size": BATCH}})
    return {
        "eval_backend": "RAGEval", "work_dir": str(out), "no_timestamp": True,
        "eval_config": {"tool": "MTEB", "models": models, "eval": {
            "custom_tasks": [{"name": TASK, "data_path": str(data), "eval_splits": ["test"]}],
            "limits": None, "top_k": top_k, "output_folder": str(out), "encode_kwargs": {"batch_size": BATCH},
        }},
    }


def rag_eval_cfg(model: str, reranker: str | None, n_queries: int | None, n_docs: int | None, out: Path,
                 top_k: int) -> dict[str, Any]:
    cfg = rag_cfg(model, TASK, "Retrieval", FOLDER, n_queries, out, max_seq_length=BI_MAX_LEN)
    cfg["eval"].update(corpus_size=n_docs, top_k=top_k, seed=SEED)
    if reranker:
        cfg["reranker"] = {"model_name_or_path": reranker, "name": "ms-marco-l12", "is_cross_encoder": True,
                           "max_seq_length": CE_MAX_LEN, "encode_kwargs": {"batch_size": BATCH}}
    return cfg


def run_driver(python: str, backend: str, cfg: dict[str, Any], out: Path) -> dict[str, Any]:
    """One driver subprocess; returns its JSON line plus ``total_s`` (the whole subprocess)."""
    out.mkdir(parents=True, exist_ok=True)
    cfg_path = out.parent / f"{out.name}.json"
    cfg_path.write_text(json.dumps({**cfg, "_task": TASK, "_out": str(out)}), encoding="utf-8")
    log = out.parent / f"{out.name}.log"
    env = {**os.environ, **OFFLINE}
    env.pop("PYTHONPATH", None)
    with Timer() as t, log.open("w") as fh:
        proc = subprocess.run([python, str(DRIVER), backend, str(cfg_path)], cwd=out, env=env,
                              stdout=subprocess.PIPE, stderr=fh, text=True)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise RuntimeError(f"{backend} driver failed (rc {proc.returncode}); log {log}:\n{tail}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["total_s"] = t.seconds
    return res


def run_in_process(cfg: dict[str, Any]) -> dict[str, Any]:
    from rag_eval import run_task

    with Timer() as t:
        scores = run_task(cfg)
    if not scores.ok:
        raise RuntimeError(f"rag_eval failed: {scores.failed}")
    stages = scores[TASK]
    by_stage = ({"one": stages["test"]} if "stage1" not in stages
                else {s: v["test"] for s, v in stages.items()})
    sample = scores.outcomes[0].sample
    return {"run_s": t.seconds, "scores": by_stage, "sample": (sample.get("queries"), sample.get("corpus"))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3, help="repetitions (median reported); default 3")
    ap.add_argument("--quick", action="store_true", help="1 repetition, 10 queries, 100 documents (smoke run)")
    ap.add_argument("--full", action="store_true", help="the whole Cranfield set (225 queries, 1,400 documents)")
    ap.add_argument("--queries", type=int, default=20, help="queries sampled (default 20)")
    ap.add_argument("--docs", type=int, default=200, help="documents kept: judged ones + seeded fill (default 200)")
    ap.add_argument("--top-k", type=int, default=10, help="stage-1 candidates reranked (default 10)")
    ap.add_argument("--model", default=None, help="bi-encoder folder (default: all-MiniLM-L6-v2)")
    ap.add_argument("--reranker", default=default_reranker(), help="cross-encoder folder (ms-marco-MiniLM-L-12)")
    ap.add_argument("--evalscope-python", default=str(ROOT.parent / "evalscope-venv" / "bin" / "python"),
                    help="python of the venv with evalscope 1.14.1 (default ../evalscope-venv/bin/python)")
    ap.add_argument("--no-subprocess", action="store_true", help="skip the rag_eval subprocess timing")
    ap.add_argument("--one-stage-only", action="store_true", help="skip the two-stage comparison")
    args = ap.parse_args(argv)
    for key, value in OFFLINE.items():
        os.environ.setdefault(key, value)
    repeats = 1 if args.quick else max(1, args.repeats)
    n_q, n_d = (None, None) if args.full else (10, 100) if args.quick else (args.queries, args.docs)
    model = args.model or minilm_path()
    for path in (args.evalscope_python, args.reranker):
        if not Path(path).exists():
            print(f"missing {path}: see the module docstring", file=sys.stderr)
            return 2

    work = fresh_dir("bench-vs-evalscope-")
    try:
        n_q, n_d = write_sample(work / "data", n_q, n_d)
        rag_q, rag_d = (None, None) if args.full else (n_q, n_d)  # --full: rag_eval without limits too
        print(machine())
        ver = subprocess.run([args.evalscope_python, "-c", "import evalscope, mteb, sentence_transformers, torch;"
                              "print(evalscope.__version__, mteb.__version__, sentence_transformers.__version__,"
                              " torch.__version__)"], capture_output=True, text=True, env={**os.environ, **OFFLINE})
        print("EvalScope venv: evalscope/mteb/sentence-transformers/torch " + (ver.stdout.strip() or ver.stderr[-300:]))
        print(f"bi-encoder {model} (max_seq_length {BI_MAX_LEN})\ncross-encoder {args.reranker} "
              f"(max_length {CE_MAX_LEN})\nCranfield sample: {n_q} queries, {n_d} documents (seed {SEED}), "
              f"top_k {args.top_k}, batch {BATCH}, repeats {repeats}")
        warm_up(model)
        modes = [("one-stage", None)] + ([] if args.one_stage_only else [("two-stage", args.reranker)])
        sides = ["es", "rag"] + ([] if args.no_subprocess else ["rag_sub"])
        reruns: dict[str, list[float]] = {m: [] for m, _ in modes}
        times: dict[str, dict[str, dict[str, list[float]]]] = {
            m: {s: {"run": [], "import": [], "total": []} for s in sides} for m, _ in modes}
        scores: dict[str, dict[str, dict]] = {m: {} for m, _ in modes}
        worst: dict[str, tuple[float, str]] = {m: (0.0, "") for m, _ in modes}
        for rep in range(repeats):
            for mode, reranker in modes:
                out = work / f"rep{rep}-{mode}"
                res: dict[str, dict[str, Any]] = {}

                def es(out=out, reranker=reranker, res=res):
                    cfg = evalscope_cfg(model, reranker, work / "data", out / "es", args.top_k)
                    res["es"] = run_driver(args.evalscope_python, "evalscope", cfg, out / "es")

                def rag(out=out, reranker=reranker, res=res):
                    cfg = rag_eval_cfg(model, reranker, rag_q, rag_d, out / "rag", args.top_k)
                    res["rag"] = run_in_process(cfg)
                    # the same run again into the same folder: bi-encoder vectors from the cache
                    res["rag_rerun"] = run_in_process(cfg)

                def rag_sub(out=out, reranker=reranker, res=res):
                    cfg = rag_eval_cfg(model, reranker, rag_q, rag_d, out / "rag_sub", args.top_k)
                    res["rag_sub"] = run_driver(sys.executable, "rag_eval", cfg, out / "rag_sub")

                steps = {"es": es, "rag": rag, "rag_sub": rag_sub}
                order = sides if rep % 2 == 0 else list(reversed(sides))  # alternate who runs first
                for side in order:
                    steps[side]()
                for side in sides:
                    times[mode][side]["run"].append(res[side]["run_s"])
                    times[mode][side]["import"].append(res[side].get("import_s", 0.0))
                    times[mode][side]["total"].append(res[side].get("total_s", res[side]["run_s"]))
                    scores[mode][side] = res[side]["scores"]
                reruns[mode].append(res["rag_rerun"]["run_s"])
                if not args.full and res["rag"]["sample"] != (n_q, n_d):
                    raise RuntimeError(f"rag_eval sampled {res['rag']['sample']} (queries, documents), "
                                       f"the EvalScope folder holds {(n_q, n_d)}")
                for side in sides[1:]:
                    d = metric_diff(res[side]["scores"], res["es"]["scores"], "EvalScope")
                    if d[0] >= worst[mode][0]:
                        worst[mode] = d
                print(f"rep {rep + 1}/{repeats} {mode}: EvalScope run {res['es']['run_s']:.1f}s "
                      f"(import {res['es']['import_s']:.1f}s, subprocess {res['es']['total_s']:.1f}s), "
                      f"rag_eval in-process {res['rag']['run_s']:.1f}s (rerun {res['rag_rerun']['run_s']:.1f}s)"
                      + ("" if args.no_subprocess else
                         f", rag_eval subprocess run {res['rag_sub']['run_s']:.1f}s "
                         f"(import {res['rag_sub']['import_s']:.1f}s, subprocess {res['rag_sub']['total_s']:.1f}s)"),
                      flush=True)
                shutil.rmtree(out, ignore_errors=True)

        rows = []
        for mode, _ in modes:
            t = times[mode]
            es_run, es_tot = t["es"]["run"], t["es"]["total"]
            ratio = median([r / e for r, e in zip(t["rag"]["run"], es_run, strict=True)])
            rerun_ratio = median([r / e for r, e in zip(reruns[mode], es_run, strict=True)])
            row = [mode, median(es_run), median(t["es"]["import"]), median(es_tot), median(t["rag"]["run"]), ratio,
                   median(reruns[mode]), rerun_ratio]
            if "rag_sub" in t:
                row += [median(t["rag_sub"]["run"]), median(t["rag_sub"]["import"]), median(t["rag_sub"]["total"]),
                        median([r / e for r, e in zip(t["rag_sub"]["run"], es_run, strict=True)]),
                        median([r / e for r, e in zip(t["rag_sub"]["total"], es_tot, strict=True)])]
            rows.append(row)
        headers = ["mode", "ES run s", "ES import s", "ES total s", "rag in-proc s", "in-proc/ES run",
                   "rag rerun s", "rerun/ES run"]
        if not args.no_subprocess:
            headers += ["rag sub run s", "rag sub import s", "rag sub total s", "sub/ES run", "sub/ES total"]
        print()
        print(table(headers, rows))
        print("\nratios rag_eval/EvalScope: median of per-repetition ratios; 'run' = run_task alone, "
              "'total' = whole subprocess (interpreter + imports + run_task); 'rerun' = rag_eval's same run "
              "again into its folder (embedding and cross-encoder score caches warm; EvalScope has no cache, "
              "its rerun costs its run)")

        score_rows = []
        for mode, _ in modes:
            for stage in scores[mode]["es"]:
                es_v = scores[mode]["es"][stage].get("ndcg_at_10")
                rag_v = scores[mode]["rag"].get(stage, {}).get("ndcg_at_10")
                label = {"one": "bi-encoder", "stage1": "stage 1 (bi-encoder)", "stage2": "stage 2 (rerank)"}[stage]
                diff = abs(rag_v - es_v) if isinstance(rag_v, float) and isinstance(es_v, float) else float("nan")
                score_rows.append([mode, label, es_v, rag_v, diff])
        print()
        print(table(["mode", "stage", "EvalScope ndcg@10", "rag_eval ndcg@10", "|diff|"], score_rows))
        ok = True
        for mode, _ in modes:
            d, where = worst[mode]
            print(f"{mode}: max |score difference| over all metrics and repetitions: {d:.3g}"
                  + (f" ({where})" if where else ""))
            ok = ok and d <= 1e-6
        print("scores: " + ("OK, identical within 1e-6 (same queries, documents, models)" if ok else
                            "MISMATCH > 1e-6"))
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
