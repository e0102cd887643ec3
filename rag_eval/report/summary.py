"""The per-run score table (printed with rich) and the per-run ``summary.csv`` / ``summary.md``."""

from __future__ import annotations

from pathlib import Path

from rag_eval.results import TaskOutcome


def _sample_text(sample: dict) -> str:
    if "queries" in sample:
        return f"{sample['queries']}/{sample['queries_total']} q, {sample['corpus']}/{sample['corpus_total']} docs"
    if "rows" in sample:
        return f"{sample['rows']}/{sample['rows_total']} rows"
    return "all"


def print_summary(outcomes: list[TaskOutcome]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="rag_eval scores")
    for col in ("type", "task", "model", "metric", "score", "sample", "time"):
        table.add_column(col, justify="right" if col in ("score", "time") else "left",
                         no_wrap=col in ("task", "model", "score", "time"))
    for o in outcomes:
        model = f"{o.stage}: {o.model}" if o.stage else o.model
        if o.status == "failed":
            score, metric = "[red]FAILED[/red]", o.error or ""
        else:
            score = f"{o.main_score:.4f}" if o.main_score is not None else "-"
            metric = o.main_metric or ""
            if o.status == "cached":
                score += " (cached)"
        table.add_row(o.task_type, o.task, model, metric, score, _sample_text(o.sample), f"{o.seconds:.1f}s")
    console = Console()
    Console(width=max(140, console.width) if not console.is_terminal else None).print(table)


SUMMARY_COLUMNS = ("stage", "task_type", "task", "model", "metric", "score", "status", "error", "sample", "seconds")


def summary_rows(outcomes: list[TaskOutcome]) -> list[dict]:
    return [
        {
            "stage": o.stage or "",
            "task_type": o.task_type,
            "task": o.task,
            "model": o.model,
            "metric": o.main_metric or "",
            "score": "" if o.main_score is None else f"{o.main_score:.6f}",
            "status": "FAILED" if o.status == "failed" else o.status,
            "error": o.error or "",
            "sample": _sample_text(o.sample),
            "seconds": f"{o.seconds:.1f}",
        }
        for o in outcomes
    ]


def write_table(folder: Path, rows: list[dict], columns: tuple[str, ...], title: str,
                extra_md: str = "") -> tuple[Path, Path]:
    """``summary.csv`` and ``summary.md`` (atomically) from ``rows`` in ``columns`` order."""
    import csv
    import io

    from rag_eval.results import atomic_write_text

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    csv_path, md_path = folder / "summary.csv", folder / "summary.md"
    atomic_write_text(csv_path, buf.getvalue())
    atomic_write_text(md_path, f"# {title}\n\n" + markdown_table(rows, columns) + extra_md)
    return csv_path, md_path


def markdown_table(rows: list[dict], columns: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [str(row.get(c, "")).replace("|", "\\|").replace("\n", " ") for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary(outcomes: list[TaskOutcome], folder) -> tuple:
    """``summary.csv`` and ``summary.md`` in ``folder``, one row per task and stage.

    Also records the run's failed tasks in ``<folder>/failures.json`` (merged across runs and
    multirun jobs, see :func:`rag_eval.report.write_failures`), so
    :func:`rag_eval.report.collect_results` and later reports still list them as FAILED.
    """
    from rag_eval.report.collect import write_failures

    folder = Path(folder)
    write_failures(outcomes, folder)
    return write_table(folder, summary_rows(outcomes), SUMMARY_COLUMNS, "rag_eval summary")
