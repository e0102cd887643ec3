"""The per-run score table (printed with rich)."""

from __future__ import annotations

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
