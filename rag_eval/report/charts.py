"""PNG charts with matplotlib (Agg backend, no display needed)."""

from __future__ import annotations

from pathlib import Path

from rag_eval import task_types
from rag_eval.report.averages import group_key, labels_of
from rag_eval.report.rows import ResultRow
from rag_eval.results import Status, atomic_write


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    """``savefig`` through an atomic write: concurrent jobs never leave half a PNG."""
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100, bbox_inches="tight"), binary=True)


def scores_chart(rows: list[ResultRow], averages, path: Path) -> Path:
    """Grouped bars: one group per task (ordered by type), one bar per model / stage; FAILED = x."""
    plt = _pyplot()
    labels = labels_of(rows)
    series = list(dict.fromkeys(labels[group_key(r)] for r in rows))
    order = {t: i for i, t in enumerate(task_types.order(r.task_type for r in rows))}
    tasks = list(dict.fromkeys((r.task_type, r.task) for r in sorted(rows, key=lambda r: (order[r.task_type],
                                                                                         r.task))))
    cell = {(labels[group_key(r)], (r.task_type, r.task)): r for r in rows}
    n = max(1, len(series))
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(8.0, 1.0 + len(tasks) * (0.5 + 0.35 * n)), 5.5))
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    for j, name in enumerate(series):
        xs, ys, failed = [], [], []
        for i, t in enumerate(tasks):
            r = cell.get((name, t))
            x = i - 0.4 + width * (j + 0.5)
            if r is None:
                continue
            if r.status == Status.FAILED or r.score is None:
                failed.append(x)
            else:
                xs.append(x)
                ys.append(r.score)
        color = cmap(j % cmap.N)
        ax.bar(xs, ys, width=width, label=name, color=color)
        if failed:
            ax.scatter(failed, [0.02] * len(failed), marker="x", color=color, s=60, zorder=3)
    ax.set_xticks(range(len(tasks)))
    ax.set_xticklabels([f"{task}\n({ttype})" for ttype, task in tasks], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("main score")
    ax.set_title("Main score per task (x = FAILED)")
    top = max([r.score for r in rows if r.score is not None] + [1.0])
    ax.set_ylim(min([0.0] + [r.score for r in rows if r.score is not None]), top * 1.05)
    ax.grid(axis="y", alpha=0.3)
    if series:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if not rows:
        ax.text(0.5, 0.5, "no results", ha="center", va="center", transform=ax.transAxes)
    _save(fig, path)
    plt.close(fig)
    return path


def speed_chart(rows: list[ResultRow], averages, path: Path) -> Path:
    """Scatter: texts/s (log x) against the mean main score, one point per model / stage."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.0, 5.5))
    points = [a for a in averages if a.texts_per_s and a.overall is not None]
    cmap = plt.get_cmap("tab10" if len(points) <= 10 else "tab20")
    for j, a in enumerate(points):
        ax.scatter([a.texts_per_s], [a.overall], s=80, color=cmap(j % cmap.N), label=a.label, zorder=3)
        ax.annotate(f"{a.label} ({a.n_tasks} tasks)", (a.texts_per_s, a.overall), fontsize=8,
                    xytext=(5, 5), textcoords="offset points")
    if points:
        ax.set_xscale("log")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    else:
        ax.text(0.5, 0.5, "no speed data (run with eval.limits to record sample sizes)",
                ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("texts / s (texts evaluated / mteb evaluation_time, over all tasks)")
    ax.set_ylabel("mean main score (all tasks)")
    ax.set_title("Speed vs quality")
    ax.grid(alpha=0.3)
    _save(fig, path)
    plt.close(fig)
    return path
