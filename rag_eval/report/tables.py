"""Folder-wide reports: the rows of :func:`collect_results`, C-MTEB averages, charts."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from rag_eval.report.collect import ResultRow, collect_results
from rag_eval.report.summary import markdown_table, write_table

logger = logging.getLogger("rag_eval.report")

REPORT_COLUMNS = ("stage", "task_type", "task", "model", "revision", "experiment", "metric", "score", "status",
                  "error", "sample", "seconds", "texts", "texts_per_s")
AVERAGE_COLUMNS = ("label", "stage", "model", "revision", "experiment", "n_tasks", "n_failed")
AVERAGES_FILE = "averages.csv"
SCORES_CHART, SPEED_CHART = "scores_by_task.png", "speed_vs_quality.png"
# C-MTEB's order of task types (the leaderboard's columns)
TYPE_ORDER = ("Retrieval", "Reranking", "STS", "PairClassification", "Classification", "Clustering")


@dataclass
class Averages:
    """C-MTEB averages of one model / stage / experiment.

    As the C-MTEB leaderboard averages: ``per_type[t]`` is the mean main score of the tasks of
    type ``t``; ``overall`` is the mean over all tasks (not the mean of the type means). FAILED
    tasks are left out and counted in ``n_failed``; compare models only over the same tasks.
    """

    label: str
    stage: str
    model: str
    revision: str
    experiment: str
    per_type: dict[str, float] = field(default_factory=dict)
    per_type_n: dict[str, int] = field(default_factory=dict)
    overall: float | None = None
    n_tasks: int = 0
    n_failed: int = 0
    texts: int = 0  # over the tasks whose texts/s is known
    seconds: float = 0.0

    @property
    def texts_per_s(self) -> float | None:
        """Total texts / total evaluation time over the tasks where both are known."""
        return self.texts / self.seconds if self.texts and self.seconds else None


def type_order(types) -> list[str]:
    types = set(types)
    return [t for t in TYPE_ORDER if t in types] + sorted(types - set(TYPE_ORDER))


def labels_of(rows: list[ResultRow]) -> dict[tuple, str]:
    """A unique label per (stage, model, revision, experiment); the revision only when needed."""
    keys = {(r.stage, r.model, r.revision, r.experiment): r.label for r in rows}
    count: dict[str, int] = {}
    for label in keys.values():
        count[label] = count.get(label, 0) + 1
    return {k: (f"{lab} @{k[2]}" if count[lab] > 1 else lab) for k, lab in keys.items()}


def _gkey(row: ResultRow) -> tuple:
    return row.stage, row.model, row.revision, row.experiment


def cmteb_averages(rows: list[ResultRow]) -> list[Averages]:
    """:class:`Averages` per (stage, model, revision, experiment), in the rows' order."""
    labels = labels_of(rows)
    groups: dict[tuple, Averages] = {}
    scores: dict[tuple, dict[str, list[float]]] = {}
    for r in rows:
        k = _gkey(r)
        avg = groups.setdefault(k, Averages(labels[k], r.stage, r.model, r.revision, r.experiment))
        if r.status == "FAILED" or r.score is None:
            avg.n_failed += 1
            continue
        scores.setdefault(k, {}).setdefault(r.task_type, []).append(r.score)
        if r.texts and r.seconds:
            avg.texts += r.texts
            avg.seconds += r.seconds
    for k, avg in groups.items():
        by_type = scores.get(k, {})
        every = [s for values in by_type.values() for s in values]
        avg.per_type = {t: sum(v) / len(v) for t, v in by_type.items()}
        avg.per_type_n = {t: len(v) for t, v in by_type.items()}
        avg.n_tasks = len(every)
        avg.overall = sum(every) / len(every) if every else None
    return list(groups.values())


def _fmt(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


def report_rows(rows: list[ResultRow]) -> list[dict]:
    """The rows as strings for ``summary.csv`` / ``summary.md`` (columns: REPORT_COLUMNS)."""
    return [{**r.as_dict(), "score": _fmt(r.score, ".6f"), "seconds": _fmt(r.seconds, ".1f"),
             "texts": _fmt(r.texts, "d"), "texts_per_s": _fmt(r.texts_per_s, ".1f")} for r in rows]


def average_rows(averages: list[Averages]) -> tuple[tuple[str, ...], list[dict]]:
    types = type_order(t for a in averages for t in a.per_type)
    columns = (*AVERAGE_COLUMNS, *types, "average", "texts_per_s")
    rows = []
    for a in averages:
        row = {"label": a.label, "stage": a.stage, "model": a.model, "revision": a.revision,
               "experiment": a.experiment, "n_tasks": a.n_tasks, "n_failed": a.n_failed,
               "average": _fmt(a.overall, ".6f"), "texts_per_s": _fmt(a.texts_per_s, ".1f")}
        row.update({t: _fmt(a.per_type.get(t), ".6f") for t in types})
        rows.append(row)
    return columns, rows


def write_reports(folder: str | Path, *, charts: bool = True) -> dict[str, Path]:
    """Rebuild the reports of everything under ``folder`` from its result files.

    Writes ``summary.csv`` and ``summary.md`` (every task of every model / stage / run, FAILED
    ones included), ``averages.csv`` (C-MTEB averages, see :class:`Averages`) and, with
    ``charts``, ``scores_by_task.png`` and ``speed_vs_quality.png``. Every file is written
    atomically, so the jobs of a Hydra multirun that share ``output_folder`` can all call it:
    the last one to finish leaves the summary of all jobs. A chart that cannot be drawn is
    logged, not raised. Returns ``{"csv", "md", "averages", "scores_chart", "speed_chart"}``
    paths (the charts only when written). Raises FileNotFoundError for a missing folder.
    """
    import csv
    import io

    from rag_eval.results import atomic_write_text

    folder = Path(folder)
    rows = collect_results(folder)
    averages = cmteb_averages(rows)
    columns, avg_rows = average_rows(averages)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(avg_rows)
    out: dict[str, Path] = {"averages": folder / AVERAGES_FILE}
    atomic_write_text(out["averages"], buf.getvalue())

    if charts:
        from rag_eval.report.charts import scores_chart, speed_chart

        for key, name, draw in (("scores_chart", SCORES_CHART, scores_chart),
                                ("speed_chart", SPEED_CHART, speed_chart)):
            try:
                draw(rows, averages, folder / name)
                out[key] = folder / name
            except Exception as exc:  # a report without a chart beats no report
                logger.warning("could not draw %s: %s: %s", name, type(exc).__name__, exc)

    md = ["", "## C-MTEB averages", "",
          "Mean main score of the tasks of each type; `average` is the mean over all tasks (as the "
          "C-MTEB leaderboard averages). FAILED tasks are left out (`n_failed`).", "",
          markdown_table(avg_rows, columns)]
    for key, title in (("scores_chart", "Scores by task"), ("speed_chart", "Speed vs quality")):
        if key in out:
            md += [f"## {title}", "", f"![{title}]({out[key].name})", ""]
    out["csv"], out["md"] = write_table(folder, report_rows(rows), REPORT_COLUMNS, "rag_eval report",
                                        "\n".join(md))
    return out


def print_report(rows: list[ResultRow], averages: list[Averages] | None = None) -> None:
    """The rows and the averages as two rich tables."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="rag_eval results")
    for col in ("type", "task", "model", "metric", "score", "sample", "time", "texts/s"):
        table.add_column(col, justify="right" if col in ("score", "time", "texts/s") else "left",
                         no_wrap=col in ("task", "score", "time"), overflow="fold")
    labels = labels_of(rows)
    for r in rows:
        if r.status == "FAILED":
            score, metric = "[red]FAILED[/red]", r.error
        else:
            score, metric = _fmt(r.score, ".4f") or "-", r.metric
        table.add_row(r.task_type, r.task, labels[_gkey(r)], metric, score, r.sample,
                      f"{r.seconds:.1f}s" if r.seconds is not None else "", _fmt(r.texts_per_s, ".1f"))
    averages = cmteb_averages(rows) if averages is None else averages
    columns, avg_rows = average_rows(averages)
    avg_table = Table(title="C-MTEB averages (mean per task type; average = mean over all tasks)")
    shown = [c for c in columns if c not in ("stage", "model", "revision", "experiment")]
    for col in shown:
        avg_table.add_column(col, justify="left" if col == "label" else "right", overflow="fold")
    for row in avg_rows:
        avg_table.add_row(*[_fmt_avg(row[c], c) for c in shown])
    console = Console()
    wide = Console(width=max(140, console.width) if not console.is_terminal else None)
    wide.print(table)
    wide.print(avg_table)


def _fmt_avg(value, column: str) -> str:
    if column in ("label", "n_tasks", "n_failed", "texts_per_s") or value == "":
        return str(value)
    return f"{float(value):.4f}"
