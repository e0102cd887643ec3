"""Rebuild a folder's reports from its result files: summary, C-MTEB averages, charts."""

from __future__ import annotations

import logging
from pathlib import Path

from rag_eval.report.averages import cmteb_averages
from rag_eval.report.charts import scores_chart, speed_chart
from rag_eval.report.compare import N_RESAMPLES, SEED
from rag_eval.report.compare_report import score_cis
from rag_eval.report.failure_analysis import FAILURES_MD, failures_markdown, task_failures
from rag_eval.report.html import REPORT_HTML, write_html
from rag_eval.report.matrix import MATRIX_COLUMNS, formatted, matrix_chart, matrix_rows
from rag_eval.report.rows import PENDING, collect_jobs, collect_results
from rag_eval.report.tables import (
    JOB_COLUMNS,
    REPORT_COLUMNS,
    average_rows,
    csv_text,
    job_rows,
    markdown_table,
    report_rows,
    status_line,
)
from rag_eval.results import Status, atomic_write_text, locked
from rag_eval.results.layout import CACHE

logger = logging.getLogger("rag_eval.report")

SUMMARY_CSV, SUMMARY_MD, AVERAGES_FILE = "summary.csv", "summary.md", "averages.csv"
SCORES_CHART, SPEED_CHART = "scores_by_task.png", "speed_vs_quality.png"
CI_MEMO = "ci95.json"  # the CIs of the last report, by per-item file (report/compare_report.py)
MATRIX_FILE, MATRIX_CHART = "matrix.csv", "retrieval_stacks.png"


#: a model that reads more of a task's tokens as unknown than this gets a note in summary.md
UNK_NOTE_RATE = 0.05
CHINESE_MODELS = "model=bge_small_zh, model=multilingual_e5_small (or multilingual_e5_small_local offline)"


def vocabulary_notes(rows) -> list[str]:
    """A Notes section naming each model whose vocabulary misses many tokens of a task."""
    by_model: dict[str, list[str]] = {}
    for r in rows:
        if r.unk_rate is not None and r.unk_rate >= UNK_NOTE_RATE:
            by_model.setdefault(r.model, []).append(f"{r.task} {100 * r.unk_rate:.0f}%")
    if not by_model:
        return []
    lines = ["## Notes", ""]
    for model, tasks in by_model.items():
        lines.append(f"- **{model}** reads many tokens as unknown (`[UNK]`): {', '.join(tasks)}. Its vocabulary "
                     "does not cover these texts (an English model on Chinese reads most characters as "
                     f"`[UNK]`), so these scores say little. For Chinese quality use a Chinese-capable model: "
                     f"{CHINESE_MODELS}.")
    return [*lines, ""]


def tie_notes(rows) -> list[str]:
    """A Notes section naming each reranker whose scores on a task are constant or mostly tied."""
    tied = [f"{r.model} on {r.task} ({r.ties.replace('_', ' ')})" for r in rows if r.ties]
    if not tied:
        return []
    return ["## Tied scores", "", "Stage-2 scores that are all identical or mostly tied: mteb breaks ties by document "
            "id, so these rankings say nothing of the reranker (check its format, max_seq_length and "
            f"instruction): {'; '.join(tied)}.", ""]


def write_reports(folder: str | Path, *, charts: bool = True) -> dict[str, Path]:
    """Rebuild the reports of everything under ``folder`` from its result files.

    Writes ``summary.csv`` and ``summary.md`` (every task of every model / stage / run, FAILED
    ones included, and the tasks jobs planned that are still running or missing; summary.md
    also lists the jobs), ``averages.csv`` (C-MTEB averages, see :class:`Averages`), with
    Retrieval results ``matrix.csv`` (retriever x reranker, see :mod:`rag_eval.report.matrix`)
    and, with ``charts``, ``scores_by_task.png``, ``speed_vs_quality.png`` and
    ``retrieval_stacks.png`` (a chart with nothing to show - no point, a single bar - is left out and
    summary.md says why in one line); with two-stage results, ``failure_analysis.md``; always
    ``report.html`` (:mod:`rag_eval.report.html`, with ``plotly.min.js`` beside it). A score with per-item
    data gets its 95% bootstrap CI (``ci95``). Every file is written atomically, and the whole collect-and-write
    runs under an ``flock`` on ``.report.lock``, so the jobs of a multirun that share
    ``output_folder`` can all call it: each one reads the folder after the one before it wrote,
    and the last to finish leaves the summary of all jobs. A chart that cannot be drawn is
    logged, not raised. Returns ``{"csv", "md", "averages", "matrix", "scores_chart",
    "speed_chart", "matrix_chart", "failures", "html"}`` paths (those after averages only when written).
    Raises FileNotFoundError for a missing folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"results folder '{folder}' not found")
    with locked(folder / ".report.lock"):
        return _write_reports(folder, charts)


def _write_reports(folder: Path, charts: bool) -> dict[str, Path]:
    rows = collect_results(folder)
    jobs = collect_jobs(folder)
    averages = cmteb_averages(rows)
    evaluated = [r for r in rows if r.status not in PENDING]
    columns, avg_rows = average_rows(averages)
    out: dict[str, Path] = {"averages": folder / AVERAGES_FILE}
    atomic_write_text(out["averages"], csv_text(avg_rows, columns))

    left_out: dict[str, str] = {}  # chart -> the one line saying why it is not drawn
    if charts:
        for key, name, draw in (("scores_chart", SCORES_CHART, scores_chart),
                                ("speed_chart", SPEED_CHART, speed_chart)):
            why = chart_gap(key, evaluated, averages)
            if why:
                left_out[key] = why
                continue
            try:
                draw(evaluated, averages, folder / name)
                out[key] = folder / name
            except Exception as exc:  # a report without a chart beats no report
                logger.warning("could not draw %s: %s: %s", name, type(exc).__name__, exc)

    cis = score_cis(rows, memo=folder / CACHE / CI_MEMO)
    md = ["# rag_eval report", "", status_line(rows, jobs), "", markdown_table(report_rows(rows, cis), REPORT_COLUMNS),
          "`ci95`: the 95% percentile-bootstrap interval of the main score over the task's queries or pairs "
          "(where per-item data exists; `python -m rag_eval.report compare` tests differences).", "",
          "", "## C-MTEB averages", "",
          "Mean main score of the tasks of each type; `average` is the mean over all tasks (as the "
          "C-MTEB leaderboard averages). FAILED tasks are left out (`n_failed`), and so are tasks still "
          "running or missing.", "",
          markdown_table(avg_rows, columns)]
    matrix = matrix_rows(evaluated)
    if matrix:
        out["matrix"] = folder / MATRIX_FILE
        atomic_write_text(out["matrix"], csv_text(formatted(matrix), MATRIX_COLUMNS))
        md += ["## Retrieval stacks", "",
               "Per Retrieval task: each stage-1 retriever alone (NoReranker) and after each reranker. "
               "`stage1_recall_at_top_k` is the share of relevant documents among the candidates, the ceiling "
               "a reranker cannot pass; `gain` is stage 2 minus stage 1.", "",
               markdown_table(formatted(matrix), MATRIX_COLUMNS)]
        if charts and len(matrix) < 2:
            md += ["(No chart: one retriever and no reranker make a single bar; the table says it all.)", ""]
        elif charts:
            try:
                out["matrix_chart"] = matrix_chart(matrix, folder / MATRIX_CHART)
                md += [f"![Retrieval stacks]({MATRIX_CHART})", ""]
            except Exception as exc:  # a report without a chart beats no report
                logger.warning("could not draw %s: %s: %s", MATRIX_CHART, type(exc).__name__, exc)
    analyses = task_failures(rows)
    if analyses:
        out["failures"] = folder / FAILURES_MD
        atomic_write_text(out["failures"], failures_markdown(analyses))
        md += ["## Failure analysis", "",
               f"Retriever misses, reranker inversions and the worst queries of each two-stage task: [{FAILURES_MD}]"
               f"({FAILURES_MD}).", ""]
    md += vocabulary_notes(rows)
    md += tie_notes(rows)
    if len(jobs) > 1:  # one job: the status line says it all
        md += ["## Jobs", "",
               "Every job that wrote into this folder (`.runs/`): `not_done` counts the planned tasks with "
               "neither a result nor a failure; `died` means its process is gone while its record says it runs.",
               "", markdown_table(job_rows(jobs), JOB_COLUMNS)]
    for key, title in (("scores_chart", "Scores by task"), ("speed_chart", "Speed vs quality")):
        if key in out:
            md += [f"## {title}", "", f"![{title}]({out[key].name})", ""]
        elif key in left_out:
            md += [f"## {title}", "", f"(No chart: {left_out[key]}.)", ""]
    try:
        out["html"] = write_html(folder, rows, jobs, averages, cis, matrix, analyses, status_line(rows, jobs),
                                 N_RESAMPLES, SEED)
        md[1:1] = ["", f"Interactive report (offline, open in a browser): [{REPORT_HTML}]({REPORT_HTML})"]
    except Exception as exc:  # the markdown and CSVs still come
        logger.warning("could not write %s: %s: %s", REPORT_HTML, type(exc).__name__, exc)
    out["csv"], out["md"] = folder / SUMMARY_CSV, folder / SUMMARY_MD
    atomic_write_text(out["csv"], csv_text(report_rows(rows, cis), REPORT_COLUMNS))
    atomic_write_text(out["md"], "\n".join(md))
    return out


def chart_gap(key: str, rows, averages) -> str:
    """Why a PNG chart would show nothing worth a picture (empty or a single bar / point); "" to draw it."""
    if key == "scores_chart":
        bars = sum(1 for r in rows if r.status == Status.OK and r.score is not None)
        return "" if bars > 1 else f"{bars} score{'s' if bars != 1 else ''} only, a single bar at most"
    points = [a for a in averages if a.texts_per_s and a.overall is not None]
    if len(points) > 1:
        return ""
    return (f"only {points[0].label} has a speed: one point" if points else
            "no run recorded texts/s (result files without sample sizes)")
