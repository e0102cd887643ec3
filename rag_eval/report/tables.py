"""Tables as text: markdown, CSV and the rich tables printed after a run or by the report CLI."""

from __future__ import annotations

import csv
import io

from rag_eval.report.averages import AVERAGE_COLUMNS, Averages, cmteb_averages, group_key, labels_of, type_columns
from rag_eval.report.rows import JobRow, ResultRow, clock_text, sample_text
from rag_eval.results import Status, TaskOutcome

REPORT_COLUMNS = ("stage", "task_type", "task", "model", "revision", "experiment", "metric", "score", "ci95", "status",
                  "error", "sample", "seconds", "texts", "texts_per_s")
JOB_COLUMNS = ("label", "state", "started", "updated", "seconds", "planned", "ok", "failed", "cached", "not_done",
               "host", "pid", "overrides", "error", "job", "log")


def fmt(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


def markdown_table(rows: list[dict], columns: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [str(row.get(c, "")).replace("|", "\\|").replace("\n", " ") for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_text(rows: list[dict], columns: tuple[str, ...]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def report_rows(rows: list[ResultRow], cis: dict[str, str] | None = None) -> list[dict]:
    """The rows as strings for ``summary.csv`` / ``summary.md`` (columns: REPORT_COLUMNS); ``cis``:
    the 95% CI of a score by result path, where its per-item data exists."""
    cis = cis or {}
    return [{**r.as_dict(), "score": fmt(r.score, ".6f"), "ci95": cis.get(r.path, ""), "seconds": fmt(r.seconds, ".1f"),
             "texts": fmt(r.texts, "d"), "texts_per_s": fmt(r.texts_per_s, ".1f")} for r in rows]


def job_rows(jobs: list[JobRow]) -> list[dict]:
    """The jobs as strings for ``summary.md`` and the report CLI (columns: JOB_COLUMNS)."""
    return [{**j.as_dict(), "started": clock_text(j.started, ""), "updated": clock_text(j.updated, ""),
             "seconds": fmt(j.seconds, ".0f"), "pid": "" if j.pid is None else str(j.pid)} for j in jobs]


def status_line(rows: list[ResultRow], jobs: list[JobRow]) -> str:
    """One line: how many tasks are ok, FAILED, running and missing, and the jobs' states."""
    count: dict[str, int] = {}
    for r in rows:
        count[r.status] = count.get(r.status, 0) + 1
    parts = [f"{count.get(s, 0)} {s}" for s in (Status.OK, Status.FAILED, Status.RUNNING, Status.MISSING)]
    line = f"{len(rows)} task results: " + ", ".join(parts)
    if jobs:
        states: dict[str, int] = {}
        for j in jobs:
            states[j.state] = states.get(j.state, 0) + 1
        line += f"; {len(jobs)} jobs: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
    return line


def average_rows(averages: list[Averages]) -> tuple[tuple[str, ...], list[dict]]:
    types = type_columns(averages)
    columns = (*AVERAGE_COLUMNS, *types, "average", "texts_per_s")
    rows = []
    for a in averages:
        row = {"label": a.label, "stage": a.stage, "model": a.model, "revision": a.revision,
               "experiment": a.experiment, "n_tasks": a.n_tasks, "n_failed": a.n_failed,
               "average": fmt(a.overall, ".6f"), "texts_per_s": fmt(a.texts_per_s, ".1f")}
        row.update({t: fmt(a.per_type.get(t), ".6f") for t in types})
        rows.append(row)
    return columns, rows


def _console():
    from rich.console import Console

    console = Console()
    return Console(width=max(140, console.width) if not console.is_terminal else None)


def print_summary(outcomes: list[TaskOutcome]) -> None:
    """The run's own table: one row per task and stage, as it just happened."""
    from rich.table import Table

    table = Table(title="rag_eval scores")
    for col in ("type", "task", "model", "metric", "score", "sample", "time"):
        table.add_column(col, justify="right" if col in ("score", "time") else "left",
                         no_wrap=col in ("task", "model", "score", "time"))
    for o in outcomes:
        model = f"{o.stage}: {o.model}" if o.stage else o.model
        if o.top_k is not None:
            model += f" (top {o.top_k})"
        if o.status == Status.FAILED:
            score, metric = f"[red]{Status.FAILED}[/red]", o.error or ""
        elif o.status == Status.SKIPPED:
            score, metric = str(Status.SKIPPED), o.error or ""
        else:
            score = f"{o.main_score:.4f}" if o.main_score is not None else "-"
            metric = o.main_metric or ""
            if o.status == Status.CACHED:
                score += f" ({Status.CACHED})"
        table.add_row(o.task_type, o.task, model, metric, score, sample_text(o.sample), f"{o.seconds:.1f}s")
    _console().print(table)


def print_report(rows: list[ResultRow], averages: list[Averages] | None = None) -> None:
    """A folder's rows and averages as two rich tables."""
    from rich.table import Table

    table = Table(title="rag_eval results")
    for col in ("type", "task", "model", "metric", "score", "sample", "time", "texts/s"):
        table.add_column(col, justify="right" if col in ("score", "time", "texts/s") else "left",
                         no_wrap=col in ("task", "score", "time"), overflow="fold")
    labels = labels_of(rows)
    for r in rows:
        if r.status in (Status.FAILED, Status.MISSING):
            score, metric = f"[red]{r.status}[/red]", r.error
        elif r.status == Status.RUNNING:
            score, metric = f"[yellow]{r.status}[/yellow]", r.error
        else:
            score, metric = fmt(r.score, ".4f") or "-", r.metric
        table.add_row(r.task_type, r.task, labels[group_key(r)], metric, score, r.sample,
                      f"{r.seconds:.1f}s" if r.seconds is not None else "", fmt(r.texts_per_s, ".1f"))
    averages = cmteb_averages(rows) if averages is None else averages
    columns, avg_rows = average_rows(averages)
    avg_table = Table(title="C-MTEB averages (mean per task type; average = mean over all tasks)")
    shown = [c for c in columns if c not in ("stage", "model", "revision", "experiment")]
    for col in shown:
        avg_table.add_column(col, justify="left" if col == "label" else "right", overflow="fold")
    for row in avg_rows:
        avg_table.add_row(*[_fmt_avg(row[c], c) for c in shown])
    console = _console()
    console.print(table)
    console.print(avg_table)


def print_jobs(jobs: list[JobRow]) -> None:
    """The jobs of a folder (``.runs/``) as a rich table."""
    from rich.table import Table

    table = Table(title="rag_eval jobs")
    shown = ("label", "state", "started", "updated", "seconds", "planned", "ok", "failed", "cached", "not_done",
             "host", "pid", "error")
    for col in shown:
        table.add_column(col, overflow="fold")
    for row in job_rows(jobs):
        table.add_row(*[str(row[c]) for c in shown])
    _console().print(table)


def _fmt_avg(value, column: str) -> str:
    if column in ("label", "n_tasks", "n_failed", "texts_per_s") or value == "":
        return str(value)
    return f"{float(value):.4f}"
