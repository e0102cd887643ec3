"""Answers that need no trust: published scores reproduced, per-item data, CIs, paired tests, failures.

Real data only. all-MiniLM-L6-v2 on the full STSBenchmark test (1,379 pairs) and LCQMC test (12,500
pairs) against the MTEB results repository's figures; e5-small against MiniLM on LCQMC; MiniLM
then the ms-marco cross-encoder on Cranfield for per-query scores and the failure analysis.
"""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

#: results/sentence-transformers__all-MiniLM-L6-v2/8b3219a92973c328a8e22fadcfa821b5dc75636a/<Task>.json
#: of the MTEB results repository (mteb 1.12.75), test split, main score cosine_spearman
PUBLISHED = {"STSBenchmark": 0.8203247, "LCQMC": 0.2385459}
SAMPLE = 400


def _result(out, model, task):
    path = next(p for p in out.glob(f"{model}/*/{task}.json"))
    return path, json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def published(tmp_path_factory, data_dir, minilm_path):
    """MiniLM on the two full test sets (mteb's own tasks, read from the local copies)."""
    from rag_eval import run_task

    out = tmp_path_factory.mktemp("published")
    scores = run_task({"model": {"model_name_or_path": minilm_path, "name": "minilm"},
                       "eval": {"tasks": [{"name": "STSBenchmark", "path": str(data_dir / "sts/stsbenchmark-en")},
                                          {"name": "LCQMC", "path": str(data_dir / "sts/lcqmc-zh")}],
                                "output_folder": str(out), "verbosity": 0}})
    assert scores.ok, scores.failed
    return out, scores


@pytest.mark.slow
def test_published_minilm_scores_reproduced(published):
    from rag_eval.report.compare import task_items
    from rag_eval.results import read_per_item

    out, scores = published
    for task, figure in PUBLISHED.items():
        split = scores[task]["test"]
        assert split["main_score"] == split["cosine_spearman"]
        assert split["cosine_spearman"] == pytest.approx(figure, abs=1e-4), task
        path, obj = _result(out, "minilm", task)
        sample = obj["rag_eval"]["sample"]  # every pair, no sample drawn (the sizes are recorded all the same)
        assert sample["limits"] is None and sample["rows"] == sample["rows_total"]
        items = task_items(read_per_item(path))
        assert items.metric == "cosine_spearman" and not items.reason
        assert items.n == {"STSBenchmark": 1379, "LCQMC": 12500}[task]
        # the per-pair similarities kept beside the result give back its score
        assert items.score() == pytest.approx(obj["scores"]["test"][0]["cosine_spearman"], abs=1e-6)


@pytest.mark.slow
def test_ci_contains_full_score_in_most_seeded_subsamples(published):
    """95% CIs of 300-pair subsamples (seeds 0..19) of STSBenchmark and LCQMC hold the full-data score."""
    from rag_eval.report.compare import Group, TaskItems, score_ci, task_items
    from rag_eval.results import read_per_item

    out, _ = published
    for task in PUBLISHED:
        full = task_items(read_per_item(_result(out, "minilm", task)[0]))
        (key, group), = full.groups.items()
        truth, covered, widths = full.score(), 0, []
        for seed in range(20):
            pick = np.sort(np.random.default_rng(seed).choice(len(group.ids), 300, replace=False))
            sub = TaskItems(task, "STS", full.metric, full.scorer,
                            {key: Group([group.ids[i] for i in pick], group.values[pick], group.gold[pick])})
            est = score_ci(sub, n_resamples=500, seed=seed)
            assert est.low < est.point < est.high
            covered += est.low <= truth <= est.high
            widths.append(est.high - est.low)
        assert covered >= 17, (task, covered)
        assert 0.02 < np.mean(widths) < 0.4  # an interval, not a point or everything


@pytest.fixture(scope="module")
def lcqmc_runs(published, data_dir, e5_path, minilm_path):
    """e5-small and MiniLM (again, under another name) on 400 LCQMC pairs, into the published folder."""
    from rag_eval import run_task

    out, _ = published
    for name, path in (("e5-small", e5_path), ("minilm-again", minilm_path)):
        scores = run_task({"model": {"model_name_or_path": path, "name": name},
                           "eval": {"tasks": [{"name": "LCQMC", "path": str(data_dir / "sts/lcqmc-zh")}],
                                    "limits": SAMPLE, "output_folder": str(out), "verbosity": 0}})
        assert scores.ok, scores.failed
    return out


def _compare(capsys, *argv):
    from rag_eval.report.__main__ import main

    assert main(["compare", *map(str, argv)]) == 0
    text = capsys.readouterr().out
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("| ")]
    header, *body = rows
    return text, [dict(zip(header, r, strict=True)) for r in body]


@pytest.mark.slow
def test_paired_test_finds_e5_better_than_minilm_on_lcqmc(lcqmc_runs, capsys):
    from rag_eval.report.compare import compare_items
    from rag_eval.report.compare_report import row_items
    from rag_eval.report.rows import collect_results

    text, rows = _compare(capsys, lcqmc_runs, "--a", "minilm", "--b", "e5-small")
    assert [r["task"] for r in rows] == ["LCQMC"]  # STSBenchmark is not shared
    (row,) = rows
    assert int(row["items"]) == SAMPLE  # the full MiniLM run aligned with e5's 400 pairs by content
    low, high = (float(x) for x in row["95% CI"].strip("[]").split(","))
    assert float(row["B - A"]) > 0.3 and 0 < low < float(row["B - A"]) < high
    assert float(row["p"]) < 0.01 and row["verdict"] == "B better"
    # B's score on the shared pairs is e5's own score (its run has exactly those pairs)
    _, e5 = _result(lcqmc_runs, "e5-small", "LCQMC")
    assert float(row["B"]) == pytest.approx(e5["scores"]["test"][0]["main_score"], abs=1e-4)
    # the same pairs through the API, and a swap of A and B mirrors the difference
    by = {r.model: r for r in collect_results(lcqmc_runs) if r.task == "LCQMC"}
    forward = compare_items(row_items(by["minilm"]), row_items(by["e5-small"]))
    backward = compare_items(row_items(by["e5-small"]), row_items(by["minilm"]))
    assert backward.diff == pytest.approx(-forward.diff) and backward.p < 0.01
    assert backward.verdict("e5", "minilm") == "e5 better"


@pytest.mark.slow
def test_paired_test_finds_no_difference_between_a_model_and_itself(lcqmc_runs, capsys):
    """MiniLM's second run embeds the 400 pairs in other batches than the full run: float noise (~1e-7)."""
    from rag_eval.report.compare import compare_items
    from rag_eval.report.compare_report import row_items
    from rag_eval.report.rows import collect_results

    _, rows = _compare(capsys, lcqmc_runs, "--a", "minilm-again", "--b", "minilm/one-stage")
    (row,) = rows
    assert int(row["items"]) == SAMPLE
    low, high = (float(x) for x in row["95% CI"].strip("[]").split(","))
    assert abs(float(row["B - A"])) < 1e-4 and -1e-3 < low <= 0 <= high < 1e-3
    assert float(row["p"]) > 0.05 and row["verdict"] == "not distinguishable"
    # the very same similarities: no difference at all
    again = row_items(next(r for r in collect_results(lcqmc_runs) if r.model == "minilm-again"))
    same = compare_items(again, again)
    assert same.n == SAMPLE and same.diff == 0 and same.low == same.high == 0 and same.p == 1.0
    # the summary marks each score that has per-pair data with its CI
    with (lcqmc_runs / "summary.csv").open(encoding="utf-8") as fh:
        summary = {(r["model"], r["task"]): r for r in csv.DictReader(fh)}
    for key in (("minilm", "LCQMC"), ("e5-small", "LCQMC"), ("minilm", "STSBenchmark")):
        low, high = (float(x) for x in summary[key]["ci95"].strip("[]").split(","))
        assert low < float(summary[key]["score"]) < high
    assert "| ci95 |" in (lcqmc_runs / "summary.md").read_text(encoding="utf-8")


def test_compare_refuses_unknown_and_ambiguous_runs(tmp_path, capsys):
    from rag_eval.report.__main__ import main

    for model in ("m", "n"):
        folder = tmp_path / model / "r1"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "T.json").write_text(json.dumps({
            "task_name": "T", "evaluation_time": 1.0,
            "scores": {"test": [{"main_score": 0.5, "hf_subset": "default", "languages": ["eng-Latn"]}]},
            "rag_eval": {"model": model, "revision": "r1", "stage": None, "task_type": "STS"}}))
    assert main(["compare", str(tmp_path), "--a", "nope", "--b", "m"]) == 2
    assert "--a 'nope' matches no run of the folder (runs: m; n)" in capsys.readouterr().err
    assert main(["compare", str(tmp_path), "--a", "m"]) == 2
    assert "give both --a and --b" in capsys.readouterr().err
    # results without per-item data (older runs) say so instead of inventing an interval
    assert main(["compare", str(tmp_path)]) == 0
    assert "no per-item data beside the result" in capsys.readouterr().out


# --------------------------------------------------------------------------- two-stage: per query, failures

TOP_K, QUERIES = 10, 20


@pytest.fixture(scope="module")
def two_stage(tmp_path_factory, data_dir, minilm_path, reranker_path):
    from rag_eval import run_task

    out = tmp_path_factory.mktemp("two")
    scores = run_task({"model": {"model_name_or_path": minilm_path, "name": "minilm"},
                       "reranker": {"model_name_or_path": reranker_path, "name": "msmarco", "is_cross_encoder": True,
                                    "max_seq_length": 256},
                       "eval": {"tasks": [{"name": "Cranfield", "type": "Retrieval",
                                           "path": str(data_dir / "retrieval/cranfield-en")}],
                                "limits": QUERIES, "corpus_size": 150, "top_k": TOP_K, "output_folder": str(out),
                                "verbosity": 0}})
    assert scores.ok, scores.failed
    return out, {o.stage: o.path for o in scores.outcomes}


def _qrels(data_dir, queries):
    rows = (line.split("\t") for line in (data_dir / "retrieval/cranfield-en/qrels/test.tsv").read_text().splitlines())
    qrels: dict[str, dict[str, int]] = {}
    for q, d, s in rows:
        if q in queries and s.strip().lstrip("-").isdigit():
            qrels.setdefault(q, {})[d] = int(s)
    return qrels


@pytest.mark.slow
def test_per_query_scores_average_to_the_result_files(two_stage):
    from rag_eval.results import per_item_path

    out, paths = two_stage
    for stage in ("stage1", "stage2"):
        obj = json.loads(paths[stage].read_text(encoding="utf-8"))
        file_scores = obj["scores"]["test"][0]
        per_item = json.loads(per_item_path(paths[stage]).read_text(encoding="utf-8"))
        assert per_item["unit"] == "query" and per_item["main_metric"] == "ndcg_at_10"
        queries = per_item["splits"]["test"]["default"]["queries"]
        predictions = json.loads((paths[stage].parent / "predictions" / "Cranfield_predictions.json").read_text())
        assert set(queries) == set(predictions["default"]["test"]) and len(queries) == QUERIES
        for metric in ("ndcg_at_10", "recall_at_10", "map_at_10"):  # mteb rounds these means to 5 digits
            mean = float(np.mean([q[metric] for q in queries.values()]))
            assert round(mean, 5) == pytest.approx(file_scores[metric], abs=1e-9), (stage, metric)
        assert float(np.mean([q["mrr_at_10"] for q in queries.values()])) == pytest.approx(
            file_scores["mrr_at_10"], abs=1e-6)
    stage2 = json.loads(per_item_path(paths["stage2"]).read_text(encoding="utf-8"))["splits"]["test"]["default"]
    recall = stage2["candidate_recall"]
    file_recall = json.loads(paths["stage2"].read_text(encoding="utf-8"))["rag_eval"]["stage1_recall_at_top_k"]
    assert float(np.mean(list(recall.values()))) == pytest.approx(file_recall, abs=1e-6)


@pytest.mark.slow
def test_failure_analysis_counts_misses_and_inversions(two_stage, data_dir, capsys):
    import pytrec_eval

    from rag_eval.report.__main__ import main

    out, paths = two_stage
    runs = {s: json.loads((paths[s].parent / "predictions" / "Cranfield_predictions.json").read_text())
            ["default"]["test"] for s in ("stage1", "stage2")}
    qrels = _qrels(data_dir, set(runs["stage1"]))
    ndcg = {s: pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(run) for s, run in runs.items()}
    misses, worse, better = 0, 0, 0
    for q, ranked in runs["stage1"].items():
        top = sorted(ranked, key=lambda d: (ranked[d], d), reverse=True)[:TOP_K]
        misses += not any(qrels[q].get(d, 0) > 0 for d in top)
        delta = ndcg["stage2"][q]["ndcg_cut_10"] - ndcg["stage1"][q]["ndcg_cut_10"]
        worse, better = worse + (delta < -1e-9), better + (delta > 1e-9)
    assert worse and better  # the reranker really changed rankings both ways

    assert main(["failures", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.strip() == (out / "failure_analysis.md").read_text(encoding="utf-8").strip()
    counts = next(line for line in text.splitlines() if line.startswith(f"| {QUERIES} |")).strip("|").split("|")
    assert counts[1].strip().startswith(f"{misses} (")
    assert counts[2].strip().startswith(f"{worse} (") and counts[3].strip().startswith(f"{better} (")
    # the worst query is shown with its text from queries.jsonl
    worst = min(runs["stage1"], key=lambda q: (ndcg["stage2"][q]["ndcg_cut_10"], ndcg["stage1"][q]["ndcg_cut_10"], q))
    texts = {json.loads(line)["_id"]: json.loads(line)["text"]
             for line in (data_dir / "retrieval/cranfield-en/queries.jsonl").read_text().splitlines()}
    block = text.split("### Worst queries", 1)[1]
    assert f"**{worst}**" in block and " ".join(texts[worst].split())[:60] in block
    # the run's own summary links the same analysis
    assert "failure_analysis.md" in (out / "summary.md").read_text(encoding="utf-8")
    shutil.rmtree(out / "stage1")  # without stage 1's files there is nothing to analyse
    assert main(["failures", str(out)]) == 0
    assert "No two-stage result with per-item data" in capsys.readouterr().out
