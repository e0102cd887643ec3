"""report.html opened in a real headless Chromium (Debian's ``chromium``, driven by playwright's client).

The folder comes from real runs: the demo's STS and pair tasks for two models (MiniLM evaluated whole,
without ``limits``; e5-small on a sample, plus a task that really fails), and a two-stage run (MiniLM
retrieves, the ms-marco cross-encoder reranks) on Cranfield (12 queries, 150 documents) with a top_k sweep
(5 and 10). The page is
copied alone (with plotly.min.js) into another folder and opened from the file, every request that is not
a local file aborted and recorded. ``RAG_EVAL_SCREENSHOTS=<dir>`` also saves one PNG per section (docs/).
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import local_task
from tests.eval.test_report import _main_score

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DEMO = Path(__file__).resolve().parents[2] / "rag_eval" / "demo_data"
E5_LIMITS, CRANFIELD_LIMITS, CRANFIELD_DOCS, TOP_KS = 100, 12, 150, [5, 10]
SECTIONS = ("leaderboard", "heatmap", "two-stage", "differences", "public-vs-yours", "speed", "provenance")

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (README's test command "
                                                             "installs it: apt-get install -y chromium)")


def _demo_tasks() -> list[dict]:
    return [local_task("StsbSTS", "STS", DEMO / "sts/stsb-zh-mini"),
            local_task("StsbPairs", "PairClassification", DEMO / "pair_classification/stsb-pairs-zh-mini")]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, data_dir, minilm_path, e5_path, reranker_path, one_label_classification):
    from rag_eval import run_task

    out = tmp_path_factory.mktemp("html")
    run_task({"model": {"model_name_or_path": minilm_path, "name": "minilm"},
              "eval": {"tasks": _demo_tasks(), "output_folder": str(out), "verbosity": 0}})
    broken = local_task("BrokenClassification", "Classification", one_label_classification)
    scores = run_task({"model": {"model_name_or_path": e5_path, "name": "e5-small"},
                       "eval": {"tasks": [*_demo_tasks(), broken], "limits": E5_LIMITS, "output_folder": str(out),
                                "verbosity": 0}})
    assert set(scores.failed) == {"BrokenClassification"}
    run_task({"model": {"model_name_or_path": minilm_path, "name": "minilm"},
              "reranker": {"model_name_or_path": reranker_path, "is_cross_encoder": True, "name": "ms-marco",
                           "max_seq_length": 256},
              "eval": {"tasks": [local_task("Cranfield", "Retrieval", data_dir / "retrieval/cranfield-en")],
                       "limits": CRANFIELD_LIMITS, "corpus_size": CRANFIELD_DOCS, "top_k": TOP_KS,
                       "output_folder": str(out), "verbosity": 0}})
    return out


def _results(out: Path) -> list[dict]:
    found = []
    for path in out.rglob("*.json"):
        if any(p.startswith(".") or p in ("per_item", "predictions") for p in path.relative_to(out).parts):
            continue
        obj = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(obj, dict) and "task_name" in obj and "rag_eval" in obj:
            found.append({**obj, "path": path})
    return found


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium for the module (Playwright's sync API runs one instance per thread)."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (README's test command installs it: apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def browser_page(folder, browser, tmp_path_factory):
    """report.html and plotly.min.js copied alone into another folder, opened in headless Chromium."""
    copy = tmp_path_factory.mktemp("copied")
    for name in ("report.html", "plotly.min.js"):
        shutil.copy2(folder / name, copy / name)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors, remote = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            remote.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto((copy / "report.html").as_uri(), wait_until="load")
    page.wait_for_function("() => document.querySelectorAll('.plotly-graph-div .main-svg').length > 0")
    yield page, errors, remote
    page.close()


@pytest.mark.slow
@needs_chromium
def test_page_is_offline_and_error_free(browser_page, folder):
    page, errors, remote = browser_page
    assert remote == [], f"the page asked the network for {remote}"
    assert errors == [], errors
    assert page.evaluate("() => typeof Plotly") == "object"
    html = (folder / "report.html").read_text(encoding="utf-8")
    assert "http://" not in html.replace("http://www.w3.org", "") and "cdn" not in html.lower()
    ids = page.evaluate("() => [...document.querySelectorAll('main > section')].map(s => s.id)")
    assert ids == list(SECTIONS)
    omitted = page.evaluate("() => Object.fromEntries([...document.querySelectorAll('main > section')]"
                            ".map(s => [s.id, s.dataset.omitted]))")
    # every section draws here, except public vs yours: all tasks of this folder are declared from local data
    assert {k for k, v in omitted.items() if v} == {"public-vs-yours"}
    assert "every task here is local" in page.inner_text("#public-vs-yours")
    # each chart div drew an SVG
    charts = page.evaluate("() => [...document.querySelectorAll('.plotly-graph-div')].map(d => "
                           "[d.id, d.querySelectorAll('.main-svg').length])")
    assert {c for c, _ in charts} >= {"heatmap-chart", "stack-cranfield", "sweep-cranfield", "speed-chart",
                                      "deltas-q0", "deltas-q1"}
    assert all(n > 0 for _, n in charts), charts


@pytest.mark.slow
@needs_chromium
def test_leaderboard_scores_equal_the_result_files(browser_page, folder):
    from rag_eval.report import collect_results
    from rag_eval.report.averages import group_key, labels_of

    page, _, _ = browser_page
    rows = collect_results(folder)
    labels = labels_of(rows)
    label_of = {r.path: labels[group_key(r)] for r in rows}
    checked = 0
    for obj in _results(folder):
        label, task = label_of[str(obj["path"])], obj["task_name"]
        cell = page.locator(f'#leaderboard-table tr[data-run="{label}"] td[data-task="{task}"]')
        assert float(cell.get_attribute("data-value")) == pytest.approx(_main_score(obj), abs=1e-12)
        assert cell.inner_text().startswith(f"{_main_score(obj):.4f}")
        checked += 1
    assert checked == 2 + 2 + 1 + len(TOP_KS)  # minilm, e5 (two each), stage 1, stage 2 per top_k
    failed = page.locator('#leaderboard-table tr[data-run="e5-small"] td.FAILED')
    assert failed.inner_text() == "FAILED"
    # a CI under each score with per-item data: minilm's STS score lies inside its own
    ci = page.locator('#leaderboard-table tr[data-run="minilm"] td[data-task="StsbSTS"] .ci').inner_text()
    low, high = (float(x) for x in ci.strip("[]").split(","))
    score = float(page.locator('#leaderboard-table tr[data-run="minilm"] td[data-task="StsbSTS"]')
                  .get_attribute("data-value"))
    assert low <= score <= high and high - low > 0
    # sorting: a click on "Mean (Task)" orders the rows by it
    header = page.locator("#leaderboard-table th", has_text="Mean (Task)")
    col = int(header.get_attribute("data-col"))
    header.click()
    values = [float(v) for v in page.eval_on_selector_all(
        "#leaderboard-table tbody tr", f"rows => rows.map(r => r.children[{col}].dataset.value)")]
    assert values == sorted(values) and len(values) == 5


@pytest.mark.slow
@needs_chromium
def test_borda_rank_is_mteb_leaderboards(browser_page, folder):
    """The page's Borda ranks equal mteb's own leaderboard function on the same per-task scores."""
    import polars as pl
    from mteb.benchmarks._create_table import _borda_rank_from_long

    page, _, _ = browser_page
    cells = page.eval_on_selector_all(
        "#leaderboard-table td.score",
        "tds => tds.map(td => [td.closest('tr').dataset.run, td.dataset.task, +td.dataset.value])")
    ranks = dict(page.eval_on_selector_all("#leaderboard-table tbody tr",
                                           "rows => rows.map(r => [r.dataset.run, +r.children[0].textContent])"))
    long = pl.DataFrame({"model_name": [c[0] for c in cells], "task_name": [c[1] for c in cells],
                         "score": [c[2] for c in cells]})
    theirs = dict(_borda_rank_from_long(long, n_models=len(ranks)).iter_rows())
    assert ranks == theirs


@pytest.mark.slow
@needs_chromium
def test_heatmap_marks_failed_and_hovers_sample_and_time(browser_page):
    page, _, _ = browser_page
    trace = page.evaluate("() => { const t = document.getElementById('heatmap-chart').data[0]; "
                          "return {x: t.x, y: t.y, text: t.text, hover: t.hovertext}; }")
    row = trace["y"].index("e5-small")
    col = trace["x"].index("BrokenClassification")
    assert trace["text"][row][col] == "FAILED"
    hover = trace["hover"][row][trace["x"].index("StsbSTS")]
    assert "cosine_spearman" in hover and f"sample: {E5_LIMITS}/400 rows" in hover and "time:" in hover


@pytest.mark.slow
@needs_chromium
def test_two_stage_section_matrix_sweep_and_query_click(browser_page, folder):
    from rag_eval.report import collect_results
    from rag_eval.report.failure_analysis import task_failures

    page, _, _ = browser_page
    cells = page.eval_on_selector_all("#stack-table tbody tr", "rows => rows.map(r => [...r.children].map("
                                      "td => td.textContent))")
    assert sorted(int(c[3]) for c in cells if c[2] != "NoReranker") == TOP_KS
    sweep = page.evaluate("() => document.getElementById('sweep-cranfield').data.map(t => [t.name, t.x])")
    assert any(name.startswith("stage 2") and xs == TOP_KS for name, xs in sweep)
    # a click on a query shows its text, its judged documents and both stages' top 5 (from per_item/)
    analysis = task_failures(collect_results(folder))[0]  # the page's blocks in the same order: q0 is the first
    first = page.locator('tr.query-row[data-set="q0"]').first
    qid = first.get_attribute("data-qid")
    first.click()
    detail = page.locator("#detail-q0")
    assert analysis.texts["queries"][qid][:40] in detail.inner_text()
    judged = detail.locator(".judged li")
    assert judged.count() == min(10, len(analysis.relevant[qid]))
    assert detail.locator(".top1 li").count() == min(5, len(analysis.ranked1[qid]))
    assert detail.locator(".top2 li").count() == min(5, len(analysis.ranked2[qid]))
    first_doc = analysis.ranked2[qid][0]
    assert first_doc in detail.locator(".top2 li").first.inner_text()
    # a click on a bar of the sorted per-query chart does the same for that bar's query
    page.locator("#deltas-q1 .point path").first.click(force=True)
    assert page.locator("#detail-q1 .query-text").count() == 1


@pytest.mark.slow
@needs_chromium
def test_differences_matrix_matches_report_compare(browser_page, folder):
    from rag_eval.report import collect_results
    from rag_eval.report.averages import labels_of
    from rag_eval.report.compare_report import compare_series, select

    page, _, _ = browser_page
    rows = collect_results(folder)
    a, b = select(rows, "minilm/one-stage", "--a"), select(rows, "e5-small", "--b")
    labels = labels_of(rows)
    expected = {c.task: c for c in compare_series(rows, a, b)}
    assert set(expected) == {"StsbSTS", "StsbPairs"}
    if not page.locator(f'table.diff td[data-a="{labels[a]}"][data-b="{labels[b]}"]').count():
        a, b = b, a  # the page compares each two runs once, in the folder's order
        expected = {c.task: c for c in compare_series(rows, a, b)}
    for task, c in expected.items():
        cell = page.locator(f'table.diff[data-task="{task}"] td[data-a="{labels[a]}"][data-b="{labels[b]}"]')
        assert float(cell.get_attribute("data-diff")) == pytest.approx(c.diff, abs=1e-12)
        assert f"{c.diff:+.4f}" in cell.inner_text() and f"[{c.low:+.4f}, {c.high:+.4f}]" in cell.inner_text()
        verdict = c.verdict("A", "B")
        kind = cell.get_attribute("class")
        assert (kind == "same") == (verdict == "not distinguishable")


@pytest.mark.slow
@needs_chromium
def test_speed_is_recorded_without_limits_and_pareto_marked(browser_page, folder):
    page, _, _ = browser_page
    with (folder / "summary.csv").open(encoding="utf-8") as fh:
        summary = [r for r in csv.DictReader(fh) if r["status"] == "ok"]
    minilm = [r for r in summary if r["model"] == "minilm" and r["stage"] == ""]
    assert {r["sample"] for r in minilm} == {"400/400 rows"}  # evaluated whole, no limits: sizes recorded
    assert all(float(r["texts_per_s"]) > 0 and int(r["texts"]) == 800 for r in minilm)
    speeds = dict(page.eval_on_selector_all("#speed-table tbody tr",
                                            "rows => rows.map(r => [r.dataset.run, +r.children[1].dataset.value])"))
    assert len(speeds) == 5 and all(v > 0 for v in speeds.values())
    fronts = page.eval_on_selector_all("#speed-table tbody tr", "rows => rows.map(r => [r.dataset.run, "
                                       "+r.children[2].dataset.value, r.children[5].textContent])")
    on = [(speeds[run], score) for run, score, f in fronts if f == "front"]
    assert on, "no point on the Pareto front"
    for run, score, f in fronts:  # a point is off the front iff another one is as fast and as good
        dominated = any(s >= speeds[run] and q >= score and (s, q) != (speeds[run], score)
                        for s, q in [(speeds[r], sc) for r, sc, _ in fronts])
        assert (f == "front") == (not dominated)
    size = page.locator('#speed-table tr[data-run="stage1: minilm"] td').nth(4).inner_text()
    assert size == f"384 dims x 4 B (fp32) x {CRANFIELD_DOCS} docs"  # MiniLM's dimensions, the sampled corpus


@pytest.mark.slow
@needs_chromium
def test_provenance_names_every_run(browser_page, folder):
    page, _, _ = browser_page
    text = page.inner_text("#provenance")
    for obj in _results(folder):
        assert obj["rag_eval"]["revision"] in text and obj["dataset_revision"] in text
    assert "mteb 2." in text and "plotly" in text


@pytest.mark.slow
@needs_chromium
def test_section_screenshots(browser_page):
    """One PNG per section into $RAG_EVAL_SCREENSHOTS (README's pictures); each drawn section is visible."""
    page, _, _ = browser_page
    where = os.environ.get("RAG_EVAL_SCREENSHOTS")
    page.add_style_tag(content="nav{position:static}")  # the sticky bar would cross a tall section's picture
    page.locator('tr.query-row[data-set="q0"]').first.click()  # the two-stage picture shows a query opened
    for sid in SECTIONS:
        box = page.locator(f"#{sid}").bounding_box()
        assert box and box["height"] > 40
        if where:
            Path(where).mkdir(parents=True, exist_ok=True)
            page.locator(f"#{sid}").screenshot(path=str(Path(where) / f"report_{sid}.png"))


# --------------------------------------------------------------------------- a first run worth showing


@pytest.mark.slow
def test_first_run_worth_showing(tmp_path, minilm_path, capsys):
    """One model, one task, no limits: texts/s recorded, no single-bar or empty chart, no jobs table for a
    single job, and the run's last line names report.html."""
    from rag_eval import run_task

    run_task({"model": {"model_name_or_path": minilm_path, "name": "minilm"},
              "eval": {"tasks": _demo_tasks()[:1], "output_folder": str(tmp_path), "verbosity": 1}})
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.endswith(f"open the report: {tmp_path / 'report.html'}")
    md = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "## Jobs" not in md and "[report.html](report.html)" in md
    assert not (tmp_path / "scores_by_task.png").exists() and not (tmp_path / "speed_vs_quality.png").exists()
    assert "(No chart: 1 score only, a single bar at most.)" in md
    assert "(No chart: only minilm has a speed: one point.)" in md
    with (tmp_path / "summary.csv").open(encoding="utf-8") as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["texts"] == "800" and float(row["texts_per_s"]) > 0
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Left out: one cell only" in html and "Left out: 1 run with a speed: a chart needs two" in html
    assert (tmp_path / "plotly.min.js").stat().st_size > 1_000_000


def test_borda_ties_and_missing_tasks_as_mteb():
    """borda_ranks against mteb's leaderboard function: ties share ranks, a missing task earns nothing."""
    import polars as pl
    from mteb.benchmarks._create_table import _borda_rank_from_long

    from rag_eval.report.html import borda_ranks

    scores = {"a": {"t1": 0.5, "t2": 0.7, "t3": 0.1}, "b": {"t1": 0.5, "t2": 0.9}, "c": {"t1": 0.2, "t3": 0.4},
              "d": {"t1": 0.9, "t2": 0.1, "t3": 0.4}}
    long = pl.DataFrame([{"model_name": m, "task_name": t, "score": s} for m, ts in scores.items()
                         for t, s in ts.items()])
    assert borda_ranks(scores) == dict(_borda_rank_from_long(long).iter_rows())


def test_public_vs_yours_ranks_and_flags():
    """Two runs swap places between built-in and local tasks: ranks, the flag, the omission line otherwise."""
    from rag_eval.report.html import public_vs_yours
    from rag_eval.report.rows import ResultRow

    def row(model, task, data, score):
        return ResultRow(stage="", task_type="STS", task=task, model=model, revision="r", metric="m", score=score,
                         data=data)

    rows = [row("a", "Pub", "public", 0.8), row("a", "Mine", "local", 0.3),
            row("b", "Pub", "public", 0.6), row("b", "Mine", "local", 0.5),
            row("c", "Pub", "public", 0.4), row("c", "Mine", "local", 0.1)]
    sec = public_vs_yours(rows)
    assert not sec.omitted
    assert '<tr data-run="a"><td>a</td><td data-value="0.8">0.8000</td><td data-value="1">1</td>' in sec.body
    assert '<td data-value="2">2</td><td class="drops">drops</td></tr>' in sec.body  # a: 1st public, 2nd yours
    rho = sec.body.split('id="rank-rho">')[1].split("<")[0]
    assert math.isclose(float(rho), 0.5)
    assert "every task here is local" in public_vs_yours([r for r in rows if r.data == "local"]).omitted


@pytest.mark.slow
@needs_chromium
def test_public_vs_yours_with_builtin_hub_tasks_and_local_tasks(tmp_path, hub_replica, minilm_path, e5_path, browser):
    """Two models on built-in tasks served by the C-MTEB hub replica (public: LCQMC, ATEC by name) and on tasks
    declared from local data (yours): the section is drawn in the browser, each run's means equal the result
    files', and its ranks follow those means."""
    import datasets.config as dconfig
    import huggingface_hub.constants as hf_constants

    from rag_eval import run_task

    out = tmp_path / "out"
    with pytest.MonkeyPatch.context() as mp:
        for key, value in (("RAG_EVAL_OFFLINE", "1"), ("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"),
                           ("HF_HUB_CACHE", str(hub_replica.hf_cache))):
            mp.setenv(key, value)
        mp.setattr(hf_constants, "HF_HUB_OFFLINE", True)
        mp.setattr(dconfig, "HF_HUB_OFFLINE", True)
        mp.setattr(dconfig, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")
        for name, path in (("minilm", minilm_path), ("e5-small", e5_path)):
            run_task({"model": {"model_name_or_path": path, "name": name},
                      "eval": {"tasks": ["LCQMC", "ATEC", *_demo_tasks()], "hub": "huggingface", "limits": 20,
                               "output_folder": str(out), "verbosity": 0}})
    means: dict[str, dict[str, list[float]]] = {}
    for obj in _results(out):
        side = "public" if obj["rag_eval"]["data"]["hub"] == "huggingface" else "local"
        means.setdefault(obj["rag_eval"]["model"], {}).setdefault(side, []).append(_main_score(obj))
    assert {m: {s: len(v) for s, v in sides.items()} for m, sides in means.items()} == {
        "minilm": {"public": 2, "local": 2}, "e5-small": {"public": 2, "local": 2}}
    page = browser.new_page()
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file://") else r.abort())
    page.goto((out / "report.html").as_uri(), wait_until="load")
    assert page.evaluate("() => document.querySelector('#public-vs-yours').dataset.omitted || ''") == ""
    rows = page.evaluate("() => [...document.querySelectorAll('#public-table tbody tr')].map(tr => "
                         "[tr.dataset.run, ...[...tr.querySelectorAll('td')].map(td => td.dataset.value)])")
    page.close()
    assert {r[0] for r in rows} == {"minilm", "e5-small"}
    rows = [[r[0], *r[2:6]] for r in rows]  # run, public mean, public rank, your mean, your rank (td 0: the run)
    for row in rows:
        assert float(row[1]) == pytest.approx(sum(means[row[0]]["public"]) / 2, abs=1e-9)
        assert float(row[3]) == pytest.approx(sum(means[row[0]]["local"]) / 2, abs=1e-9)
    by_public = sorted(rows, key=lambda r: -float(r[1]))
    assert [int(r[2]) for r in by_public] == [1, 2]
    by_local = sorted(rows, key=lambda r: -float(r[3]))
    assert [int(r[4]) for r in by_local] == [1, 2]
