"""``python -m rag_eval.report compare``: two runs of a folder, task by task, with uncertainty.

A run is one series of the folder's reports (stage, model, revision, experiment), picked by
``MODEL[/STAGE][@EXPERIMENT]``: the model's name (as in ``summary.md``), optionally ``/stage1``,
``/stage2`` or ``/one-stage``, and part of the experiment folder's name (``@top10``). Without
``--a`` / ``--b`` every two runs of the folder that share a task are compared. The statistics are
:mod:`rag_eval.report.compare`'s; this module finds the runs and writes the tables.
"""

from __future__ import annotations

import json
import logging
from itertools import combinations
from pathlib import Path
from typing import Any

from rag_eval.errors import ConfigError
from rag_eval.report.averages import group_key, labels_of
from rag_eval.report.compare import ALPHA, N_RESAMPLES, SEED, Comparison, compare_items, score_ci, task_items
from rag_eval.report.rows import ResultRow
from rag_eval.report.tables import markdown_table
from rag_eval.results import Status, atomic_write_text, read_per_item, safe_path_part
from rag_eval.results.layout import per_item_path

STAGE_NAMES = {"stage1": "stage1", "stage2": "stage2", "one-stage": ""}
logger = logging.getLogger(__name__)
COMPARE_COLUMNS = ("task", "type", "metric", "items", "A", "B", "B - A", "95% CI", "p", "verdict")


def row_items(row: ResultRow):
    """The :class:`TaskItems` of a report row (its per-item file beside the result)."""
    return task_items(read_per_item(Path(row.path)), row.task, row.task_type, row.metric)


def score_cis(rows: list[ResultRow], n_resamples: int = N_RESAMPLES, seed: int = SEED,
              memo: Path | None = None) -> dict[str, str]:
    """``{result path: "[low, high]"}``: the 95% bootstrap CI of each score that has per-item data.

    ``memo`` (a JSON file) keeps each CI by its per-item file's size and mtime, so a report rebuilt after
    one more task resamples that task only, not every result in the folder again.
    """
    known = _read_memo(memo)
    out, kept = {}, {}
    for r in rows:
        if r.status == Status.FAILED or r.score is None or not r.path.endswith(".json"):
            continue
        source = per_item_path(Path(r.path))
        try:
            stat = source.stat()
        except OSError:
            continue
        key = [stat.st_size, stat.st_mtime_ns, n_resamples, seed, r.metric]
        hit = known.get(str(source))
        if isinstance(hit, dict) and hit.get("key") == key and isinstance(hit.get("ci"), str):
            ci = hit["ci"]
        else:
            items = row_items(r)
            if items.reason:
                continue
            est = score_ci(items, n_resamples, seed)
            ci = f"[{est.low:.4f}, {est.high:.4f}]"
        out[r.path] = ci
        kept[str(source)] = {"key": key, "ci": ci}
    if memo is not None and kept != known:
        try:
            memo.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(memo, json.dumps(kept, sort_keys=True))
        except OSError as exc:  # the CIs are in the report either way; the next report resamples again
            logger.warning("could not keep the ci95 memo %s: %s", memo, exc)
    return out


def _read_memo(memo: Path | None) -> dict[str, Any]:
    if memo is None or not memo.is_file():
        return {}
    try:
        known = json.loads(memo.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def _series(rows: list[ResultRow]) -> dict[tuple, list[ResultRow]]:
    out: dict[tuple, list[ResultRow]] = {}
    for r in rows:
        if r.status != Status.FAILED and r.score is not None:
            out.setdefault(group_key(r), []).append(r)
    return out


def select(rows: list[ResultRow], selector: str, option: str) -> tuple:
    """The one series ``MODEL[/STAGE][@EXPERIMENT]`` names (a one-line ConfigError otherwise)."""
    text, _, experiment = selector.partition("@")
    model, stage = text, None
    head, _, tail = text.rpartition("/")
    if head and tail in STAGE_NAMES:
        model, stage = head, STAGE_NAMES[tail]
    series = _series(rows)
    labels = labels_of(rows)
    found = [k for k in series
             if (k[1] == model or safe_path_part(k[1]) == safe_path_part(model) or labels[k] == selector)
             and (stage is None or k[0] == stage) and experiment in k[3]]
    if len(found) == 1:
        return found[0]
    runs = "; ".join(labels[k] for k in series) or "none"
    if not found:
        raise ConfigError(f"{option} {selector!r} matches no run of the folder (runs: {runs})")
    raise ConfigError(f"{option} {selector!r} matches {len(found)} runs ({'; '.join(labels[k] for k in found)}): "
                      "add /stage1, /stage2 or @<part of the experiment name>")


def compare_series(rows: list[ResultRow], a: tuple, b: tuple, n_resamples: int = N_RESAMPLES,
                   seed: int = SEED) -> list[Comparison]:
    """One :class:`Comparison` per task the two series share (in report order)."""
    series = _series(rows)
    theirs = {r.task: r for r in series.get(b, [])}
    return [compare_items(row_items(r), row_items(theirs[r.task]), n_resamples, seed)
            for r in series.get(a, []) if r.task in theirs]


def _fmt(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


def comparison_markdown(rows: list[ResultRow], a: tuple, b: tuple, n_resamples: int = N_RESAMPLES,
                        seed: int = SEED, alpha: float = ALPHA) -> str:
    labels = labels_of(rows)
    results = compare_series(rows, a, b, n_resamples, seed)
    table = [{"task": c.task, "type": c.task_type, "metric": c.metric, "items": c.n or "",
              "A": _fmt(c.a, ".4f"), "B": _fmt(c.b, ".4f"), "B - A": _fmt(c.diff, "+.4f"),
              "95% CI": f"[{c.low:+.4f}, {c.high:+.4f}]" if c.low is not None else "",
              "p": _fmt(c.p, ".4f"), "verdict": c.verdict("A", "B", alpha)} for c in results]
    lines = [f"## A = {labels[a]}  vs  B = {labels[b]}", "",
             markdown_table(table, COMPARE_COLUMNS) if table else "(no task in common)\n",
             f"Scores recomputed on the items both runs share (`items`). 95% CI: paired percentile bootstrap of "
             f"B - A ({n_resamples} resamples, seed {seed}); p: two-sided paired permutation test ({n_resamples} "
             f"random swaps); a difference counts when p < {alpha} and the CI excludes 0.", ""]
    return "\n".join(lines)


def compare_folder(rows: list[ResultRow], a: str | None = None, b: str | None = None,
                   n_resamples: int = N_RESAMPLES, seed: int = SEED) -> str:
    """The markdown of ``compare``: the runs named by ``a`` and ``b``, or every two runs sharing a task."""
    if (a is None) != (b is None):
        raise ConfigError("give both --a and --b (or neither, to compare every two runs of the folder)")
    if a is not None:
        pairs = [(select(rows, a, "--a"), select(rows, b, "--b"))]
    else:
        series = _series(rows)
        pairs = [(x, y) for x, y in combinations(series, 2)
                 if {r.task for r in series[x]} & {r.task for r in series[y]}]
    if not pairs:
        return "# rag_eval comparison\n\nNo two runs of the folder share a task.\n"
    body = [comparison_markdown(rows, x, y, n_resamples, seed) for x, y in pairs]
    return "\n".join(["# rag_eval comparison", "", *body])
