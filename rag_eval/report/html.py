"""``report.html``: one offline, interactive page over a folder's results (Plotly, no server, no network).

Built from the same rows as ``summary.md`` and the CSVs (:func:`rag_eval.report.writer.write_reports`
calls :func:`write_html`). Plotly's JavaScript is written once beside the page as ``plotly.min.js``
and loaded by a relative path, so the page opens from the file and from a copied folder, offline.
Sections (each one left out with one line saying why when it has nothing to show):

* **Leaderboard**: one row per model / stage / experiment; the mean per C-MTEB task type, the mean over
  tasks and the Borda rank as mteb's leaderboard computes it (:func:`borda_ranks`); each task's score with
  its 95% bootstrap CI where per-item data exists. Sortable (click a column).
* **Per-task heatmap**: runs x tasks; FAILED / running / missing cells marked; hover: metric, sample, time.
* **Two-stage**: the retrieval-stack matrix (stage 1, stage 2, the stage-1 recall@top_k ceiling), the
  top_k sweep as curves, and per reranked task the per-query stage-2 minus stage-1 deltas, sorted; a click
  on a query shows its text, its judged documents and both stages' top 5.
* **Differences that are real**: ``report compare`` for every two runs sharing a task, as a matrix.
* **Public vs your data**: each run's rank on built-in tasks and on tasks declared from local data.
* **Speed vs quality**: texts/s against the mean score, the index size, the Pareto front.
* **Provenance**: per run, the model, its revision and precision, the data, the sample, the versions.
"""

from __future__ import annotations

import html
import json
import logging
import math
from dataclasses import asdict, dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

from rag_eval import task_types
from rag_eval.report.averages import Averages, group_key, labels_of, type_columns
from rag_eval.report.compare import ALPHA, Comparison, compare_items
from rag_eval.report.failure_analysis import TaskFailures
from rag_eval.report.matrix import NO_RERANKER
from rag_eval.report.rows import PENDING, JobRow, ResultRow
from rag_eval.results import Status, atomic_write_text
from rag_eval.results.layout import CACHE

logger = logging.getLogger("rag_eval.report")

REPORT_HTML, PLOTLY_JS = "report.html", "plotly.min.js"
COMPARE_MEMO = "compare.json"  # the paired comparisons of the last report, by both per-item files (.cache/)
#: queries per reranked task whose texts and rankings the page carries (the largest changes and the worst)
DETAILED_QUERIES = 200
TOP_SHOWN = 5
#: bytes per embedding dimension of each output dtype / precision (the index size)
DTYPE_BYTES = {"float32": 4, "fp32": 4, "float16": 2, "fp16": 2, "bfloat16": 2, "bf16": 2, "int8": 1, "uint8": 1,
               "binary": 1 / 8, "ubinary": 1 / 8}


@dataclass
class Section:
    """One section of the page: its anchor, its title and its HTML (or why it is left out)."""

    id: str
    title: str
    body: str = ""
    omitted: str = ""  # one line: why there is nothing to show


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _num(value: float | None, spec: str = ".4f") -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def _parse_ci(text: str | None) -> tuple[float, float] | None:
    try:
        low, high = (float(x) for x in (text or "").strip("[]").split(","))
        return low, high
    except ValueError:
        return None


# --------------------------------------------------------------------------- Borda rank (mteb's leaderboard)


def borda_ranks(scores: dict[str, dict[str, float]]) -> dict[str, int]:
    """Borda rank per run from ``{run: {task: score}}``, as mteb's leaderboard computes it
    (``mteb.benchmarks._create_table._borda_rank_from_long``): in each task the runs are ranked by score
    (ties: average rank), a run earns ``n_runs - rank`` points per task it has (none for a task it lacks),
    and the point totals are ranked again, highest first, ties sharing the best rank ("min")."""
    from scipy.stats import rankdata

    runs = list(scores)
    n = len(runs)
    points = dict.fromkeys(runs, 0.0)
    tasks = {t for s in scores.values() for t in s}
    for task in tasks:
        having = [r for r in runs if task in scores[r]]
        ranks = rankdata([-scores[r][task] for r in having], method="average")
        for r, rank in zip(having, ranks, strict=True):
            points[r] += n - rank
    order = rankdata([-points[r] for r in runs], method="min")
    return {r: int(k) for r, k in zip(runs, order, strict=True)}


# --------------------------------------------------------------------------- plotly


def _figure_html(fig, div_id: str) -> str:
    fig.update_layout(template="plotly_white", margin={"l": 60, "r": 30, "t": 50, "b": 60})
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


def _write_plotly_js(folder: Path) -> None:
    """Plotly's JavaScript beside the page (once per plotly version: rewritten only when it differs)."""
    from plotly.offline import get_plotlyjs

    js = get_plotlyjs()
    path = folder / PLOTLY_JS
    try:
        if path.stat().st_size == len(js.encode("utf-8")):
            return
    except OSError:
        pass
    atomic_write_text(path, js)


# --------------------------------------------------------------------------- sections


def leaderboard(rows: list[ResultRow], averages: list[Averages], cis: dict[str, str]) -> Section:
    sec = Section("leaderboard", "Leaderboard")
    shown = [a for a in averages if a.overall is not None]
    if not shown:
        sec.omitted = "no task has a score yet"
        return sec
    labels = labels_of(rows)
    types = type_columns(shown)
    order = {t: i for i, t in enumerate(task_types.order(r.task_type for r in rows))}
    tasks = list(dict.fromkeys(r.task for r in sorted(rows, key=lambda r: (order.get(r.task_type, 99), r.task))))
    cell: dict[tuple[str, str], ResultRow] = {(labels[group_key(r)], r.task): r for r in rows}
    per_run = {a.label: {t: cell[(a.label, t)].score for t in tasks
                         if (a.label, t) in cell and cell[(a.label, t)].score is not None} for a in shown}
    ranks = borda_ranks(per_run)
    head = ["Rank (Borda)", "run", "tasks", "failed", *[f"{t} (mean)" for t in types], "Mean (Task)",
            "Mean (TaskType)", *tasks]
    out = ['<table class="sortable" id="leaderboard-table"><thead><tr>']
    out += [f'<th data-col="{i}">{esc(h)}</th>' for i, h in enumerate(head)]
    out.append("</tr></thead><tbody>")
    for a in sorted(shown, key=lambda a: (ranks[a.label], -(a.overall or 0))):
        type_mean = sum(a.per_type.values()) / len(a.per_type) if a.per_type else None
        cells = [(ranks[a.label], str(ranks[a.label])), (a.label, esc(a.label)), (a.n_tasks, str(a.n_tasks)),
                 (a.n_failed, str(a.n_failed))]
        cells += [(a.per_type.get(t), _num(a.per_type.get(t))) for t in types]
        cells += [(a.overall, f"<b>{_num(a.overall)}</b>"), (type_mean, _num(type_mean))]
        out.append(f'<tr data-run="{esc(a.label)}">' + "".join(f'<td data-value="{esc(v)}">{t}</td>'
                                                              for v, t in cells))
        for t in tasks:
            r = cell.get((a.label, t))
            if r is None:
                out.append('<td data-value="" class="none">-</td>')
            elif r.status != Status.OK or r.score is None:
                out.append(f'<td data-value="" class="{esc(r.status)}" title="{esc(r.error)}">{esc(r.status)}</td>')
            else:
                ci = _parse_ci(cis.get(r.path))
                ci_text = f'<br><span class="ci">[{ci[0]:.4f}, {ci[1]:.4f}]</span>' if ci else ""
                out.append(f'<td data-value="{r.score!r}" data-task="{esc(t)}" class="score">'
                           f'{r.score:.4f}{ci_text}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    sec.body = (f"<p>{len(shown)} runs (model / stage / experiment) over {len(tasks)} tasks. "
                "<b>Rank (Borda)</b>: each task ranks the runs, a run earns (runs - its rank) points per task, "
                "the totals are ranked (mteb's leaderboard). <b>Mean (Task)</b>: mean over tasks (C-MTEB's "
                "average); <b>Mean (TaskType)</b>: mean of the type means. Under a score, its 95% bootstrap CI "
                "over the task's items where per-item data exists. Click a column to sort.</p>" + "".join(out))
    return sec


def heatmap(rows: list[ResultRow]) -> Section:
    import plotly.graph_objects as go

    sec = Section("heatmap", "Per-task heatmap")
    labels = labels_of(rows)
    runs = list(dict.fromkeys(labels[group_key(r)] for r in rows))
    order = {t: i for i, t in enumerate(task_types.order(r.task_type for r in rows))}
    tasks = list(dict.fromkeys(r.task for r in sorted(rows, key=lambda r: (order.get(r.task_type, 99), r.task))))
    if len(runs) * len(tasks) < 2:
        sec.omitted = f"one cell only ({len(runs)} run x {len(tasks)} task): the leaderboard shows it"
        return sec
    cell = {(labels[group_key(r)], r.task): r for r in rows}
    z, text, hover = [], [], []
    for run in runs:
        zr, tr, hr = [], [], []
        for t in tasks:
            r = cell.get((run, t))
            if r is None:
                zr.append(None)
                tr.append("")
                hr.append(f"{run}<br>{t}: not evaluated")
                continue
            ok = r.status == Status.OK and r.score is not None
            zr.append(r.score if ok else None)
            tr.append(f"{r.score:.3f}" if ok else r.status)
            hr.append("<br>".join(x for x in (
                f"<b>{esc(run)}</b>", f"{esc(t)} ({esc(r.task_type)})",
                f"{esc(r.metric)}: {r.score:.4f}" if ok else f"<b>{esc(r.status)}</b>: {esc(r.error[:160])}",
                f"sample: {esc(r.sample)}" if r.sample else "",
                f"time: {r.seconds:.1f} s" if r.seconds is not None else "",
                f"texts/s: {r.texts_per_s:.1f}" if r.texts_per_s else "") if x))
        z.append(zr)
        text.append(tr)
        hover.append(hr)
    fig = go.Figure(go.Heatmap(z=z, x=tasks, y=runs, text=text, texttemplate="%{text}", hovertext=hover,
                               hovertemplate="%{hovertext}<extra></extra>", colorscale="Viridis",
                               colorbar={"title": "main score"}, xgap=2, ygap=2))
    fig.update_layout(title="Main score per task (blank cells: FAILED, running or missing)",
                      height=max(320, 60 + 45 * len(runs)), yaxis={"autorange": "reversed"})
    sec.body = _figure_html(fig, "heatmap-chart")
    return sec


def _stack_bars(matrix: list[dict[str, Any]], task: str) -> str | None:
    import plotly.graph_objects as go

    rows = [m for m in matrix if m["task"] == task]
    if len(rows) < 2:
        return None
    retrievers = list(dict.fromkeys(m["retriever"] for m in rows))
    fig = go.Figure()
    stage1 = [next((m["stage1_score"] for m in rows if m["retriever"] == r and m["stage1_score"] is not None), None)
              for r in retrievers]
    fig.add_bar(x=retrievers, y=stage1, name="stage 1 (retriever alone)")
    for reranker, k in dict.fromkeys((m["reranker"], m["top_k"]) for m in rows if m["reranker"] != NO_RERANKER):
        ys = [next((m["stage2_score"] for m in rows if m["retriever"] == r and (m["reranker"], m["top_k"]) ==
                    (reranker, k)), None) for r in retrievers]
        fig.add_bar(x=retrievers, y=ys, name=f"{reranker} (top {k})")
    ceil = [m for m in rows if m["stage1_recall_at_top_k"] is not None]
    if ceil:
        fig.add_scatter(x=[m["retriever"] for m in ceil], y=[m["stage1_recall_at_top_k"] for m in ceil],
                        mode="markers", marker={"symbol": "line-ew-open", "size": 30, "color": "black"},
                        name="stage-1 recall@top_k (ceiling)",
                        text=[f"top {m['top_k']}" for m in ceil], hovertemplate="recall@%{text}: %{y:.4f}")
    fig.update_layout(barmode="group", title=f"{task}: main score by retriever and reranker",
                      yaxis={"title": rows[0]["metric"], "range": [0, 1.05]}, height=380)
    return _figure_html(fig, f"stack-{_slug(task)}")


def _sweep_curves(matrix: list[dict[str, Any]], task: str) -> str | None:
    import plotly.graph_objects as go

    rows = [m for m in matrix if m["task"] == task and m["reranker"] != NO_RERANKER and m["top_k"] != ""]
    pairs = list(dict.fromkeys((m["retriever"], m["reranker"]) for m in rows))
    pairs = [p for p in pairs if len({m["top_k"] for m in rows if (m["retriever"], m["reranker"]) == p}) > 1]
    if not pairs:
        return None
    fig = go.Figure()
    for retriever, reranker in pairs:
        pts = sorted((m for m in rows if (m["retriever"], m["reranker"]) == (retriever, reranker)),
                     key=lambda m: m["top_k"])
        ks = [m["top_k"] for m in pts]
        fig.add_scatter(x=ks, y=[m["stage2_score"] for m in pts], mode="lines+markers",
                        name=f"stage 2: {reranker} on {retriever}")
        if any(m["stage1_recall_at_top_k"] is not None for m in pts):
            fig.add_scatter(x=ks, y=[m["stage1_recall_at_top_k"] for m in pts], mode="lines+markers",
                            line={"dash": "dot"}, name=f"recall@top_k of {retriever} (ceiling)")
        if pts[0]["stage1_score"] is not None:
            fig.add_scatter(x=[ks[0], ks[-1]], y=[pts[0]["stage1_score"]] * 2, mode="lines",
                            line={"dash": "dash", "color": "grey"}, name=f"stage 1: {retriever}")
    fig.update_layout(title=f"{task}: the top_k sweep", xaxis={"title": "top_k (candidates reranked)"},
                      yaxis={"title": rows[0]["metric"]}, height=380)
    return _figure_html(fig, f"sweep-{_slug(task)}")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-").lower() or "x"


def _detail(f: TaskFailures, qid: str) -> dict[str, Any]:
    docs = f.texts["documents"]
    gold = f.relevant.get(qid, {})

    def ranked(ids: list[str]) -> list[dict[str, Any]]:
        return [{"id": d, "grade": gold.get(d), "text": docs.get(d, "")} for d in ids[:TOP_SHOWN]]

    return {"query": f.texts["queries"].get(qid, ""),
            "judged": [{"id": d, "grade": g, "text": docs.get(d, "")} for d, g in list(gold.items())[:10]],
            "stage1": ranked(f.ranked1.get(qid, [])), "stage2": ranked(f.ranked2.get(qid, []))}


def _query_block(f: TaskFailures, index: int, details: dict[str, Any]) -> str | None:
    import plotly.graph_objects as go

    changes = sorted(f.queries, key=lambda q: (q.delta, q.qid))
    if len(changes) < 2:
        return None
    key = f"q{index}"
    by_size = sorted(changes, key=lambda q: -abs(q.delta))[:DETAILED_QUERIES]
    kept = {q.qid for q in by_size} | {q.qid for q in f.worst}
    details[key] = {"task": f.task, "stage1": f.stage1, "stage2": f.stage2, "metric": f.metric,
                    "queries": {q.qid: {**_detail(f, q.qid), "s1": q.stage1, "s2": q.stage2, "miss": q.miss}
                                for q in changes if q.qid in kept}}
    colors = ["#c0392b" if q.delta < 0 else "#27ae60" if q.delta > 0 else "#95a5a6" for q in changes]
    fig = go.Figure(go.Bar(x=list(range(1, len(changes) + 1)), y=[q.delta for q in changes], marker_color=colors,
                           customdata=[q.qid for q in changes],
                           text=[f.texts["queries"].get(q.qid, "")[:80] for q in changes], textposition="none",
                           hovertemplate="query %{customdata}: %{y:+.4f}<br>%{text}<extra></extra>"))
    fig.update_layout(title=f"{f.task}: {f.metric} stage 2 - stage 1 per query, sorted (click a bar)",
                      xaxis={"title": "queries (sorted by change)"}, yaxis={"title": "change"}, height=330)
    worse, better = len(f.worse), len(f.better)
    listed = sorted((q for q in changes if q.qid in kept), key=lambda q: (q.delta, q.qid))
    table = ['<table class="queries"><thead><tr><th>query</th><th>text</th><th>stage 1</th><th>stage 2</th>'
             '<th>change</th></tr></thead><tbody>']
    table += [f'<tr class="query-row" data-set="{key}" data-qid="{esc(q.qid)}"><td>{esc(q.qid)}</td>'
              f'<td>{esc(f.texts["queries"].get(q.qid, "")[:120])}</td><td>{q.stage1:.4f}</td>'
              f'<td>{q.stage2:.4f}</td><td>{q.delta:+.4f}</td></tr>' for q in listed]
    table.append("</tbody></table>")
    chart = _figure_html(fig, f"deltas-{key}")
    return (f'<h4>{esc(f.task)}: {esc(f.stage2)} after {esc(f.stage1)} (top_k {esc(f.top_k)})</h4>'
            f"<p>{len(changes)} queries: reranker better on {better}, worse on {worse}, "
            f"{len(f.misses)} retriever misses (no judged document among the candidates).</p>"
            + chart + f'<div class="detail" id="detail-{key}"><i>Click a bar or a query below to see its text, '
            f'its judged documents and both stages\' top {TOP_SHOWN}.</i></div>'
            + f'<details open><summary>Queries (largest changes)</summary>{"".join(table)}</details>')


def two_stage(matrix: list[dict[str, Any]], analyses: list[TaskFailures], details: dict[str, Any]) -> Section:
    from rag_eval.report.matrix import MATRIX_COLUMNS, formatted

    sec = Section("two-stage", "Two-stage: retriever x reranker")
    if not any(m["reranker"] != NO_RERANKER for m in matrix):
        sec.omitted = "no two-stage (retriever + reranker) Retrieval result in this folder"
        return sec
    parts = ["<p>Per Retrieval task: each retriever alone (stage 1) and after each reranker (stage 2); the "
             "stage-1 recall@top_k is the share of judged documents among the candidates, the ceiling a "
             "reranker cannot pass.</p>"]
    rows = formatted(matrix)
    parts.append('<table class="sortable" id="stack-table"><thead><tr>'
                 + "".join(f'<th data-col="{i}">{esc(c)}</th>' for i, c in enumerate(MATRIX_COLUMNS))
                 + "</tr></thead><tbody>")
    for m in rows:
        parts.append("<tr>" + "".join(f'<td data-value="{esc(m[c])}">{esc(m[c])}</td>' for c in MATRIX_COLUMNS)
                     + "</tr>")
    parts.append("</tbody></table>")
    for task in dict.fromkeys(m["task"] for m in matrix):
        bars = _stack_bars(matrix, task)
        parts.append(bars or f'<p class="omitted">{esc(task)}: one bar only, shown in the table.</p>')
        sweep = _sweep_curves(matrix, task)
        parts.append(sweep or f'<p class="omitted">{esc(task)}: no top_k sweep (one top_k per retriever and '
                              'reranker; give eval.top_k a list to draw one).</p>')
    parts.append("<h3>Per query: where the reranker wins and loses</h3>")
    blocks = [b for i, f in enumerate(analyses) if (b := _query_block(f, i, details))]
    parts += blocks or ['<p class="omitted">No per-query data for both stages (per_item/ files) in this folder.</p>']
    sec.body = "".join(parts)
    return sec


def _stat(path: str) -> list[int] | None:
    from rag_eval.results.layout import per_item_path

    try:
        st = per_item_path(Path(path)).stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def compare_memoised(ra: ResultRow, rb: ResultRow, n_resamples: int, seed: int, memo: dict[str, Any],
                     kept: dict[str, Any]) -> Comparison:
    """``report compare`` of two rows (their per-item files), answered from ``memo`` while neither file
    changed: a report rebuilt after one more task resamples only the pairs that task is in."""
    from rag_eval.report.compare_report import row_items

    name = f"{ra.path}|{rb.path}"
    key = [_stat(ra.path), _stat(rb.path), n_resamples, seed, ra.metric, rb.metric]
    hit = memo.get(name)
    if isinstance(hit, dict) and hit.get("key") == key and isinstance(hit.get("c"), dict):
        try:
            c = Comparison(**hit["c"])
            kept[name] = hit
            return c
        except TypeError:
            pass
    c = compare_items(row_items(ra), row_items(rb), n_resamples, seed)
    kept[name] = {"key": key, "c": asdict(c)}
    return c


def differences(rows: list[ResultRow], n_resamples: int, seed: int, memo_path: Path | None = None) -> Section:
    from rag_eval.report.compare_report import _read_memo, _series

    sec = Section("differences", "Differences that are real")
    series = _series(rows)
    labels = labels_of(rows)
    pairs = [(a, b) for a, b in combinations(series, 2) if {r.task for r in series[a]} & {r.task for r in series[b]}]
    if not pairs:
        sec.omitted = "no two runs share a task"
        return sec
    memo, kept = _read_memo(memo_path), {}
    by_task: dict[str, dict[tuple[str, str], Any]] = {}
    for a, b in pairs:
        theirs = {r.task: r for r in series[b]}
        for ra in series[a]:
            if ra.task in theirs:
                c = compare_memoised(ra, theirs[ra.task], n_resamples, seed, memo, kept)
                by_task.setdefault(c.task, {})[(labels[a], labels[b])] = c
    if memo_path is not None and kept != memo:
        try:
            memo_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(memo_path, json.dumps(kept, sort_keys=True))
        except OSError as exc:  # the matrix is on the page either way
            logger.warning("could not keep the comparison memo %s: %s", memo_path, exc)
    parts = [f"<p>Per task, B - A on the items both runs share: the difference, its 95% paired bootstrap CI and a "
             f"paired permutation p ({n_resamples} resamples, seed {seed}; <code>python -m rag_eval.report compare"
             f"</code>). A difference counts when p &lt; {ALPHA} and the CI excludes 0; the others are greyed "
             "(not distinguishable).</p>"]
    for task, cells in by_task.items():
        rows_a = list(dict.fromkeys(a for a, _ in cells))
        cols_b = list(dict.fromkeys(b for _, b in cells))
        parts.append(f'<h4>{esc(task)}</h4><table class="diff" data-task="{esc(task)}"><thead><tr>'
                     '<th>A \\ B (B - A)</th>'
                     + "".join(f"<th>{esc(b)}</th>" for b in cols_b) + "</tr></thead><tbody>")
        for a in rows_a:
            parts.append(f"<tr><th>{esc(a)}</th>")
            for b in cols_b:
                c = cells.get((a, b))
                if c is None:
                    parts.append('<td class="none"></td>')
                    continue
                verdict = c.verdict(a, b)
                if c.reason:
                    parts.append(f'<td class="undefined" title="{esc(c.reason)}">n/a</td>')
                    continue
                kind = "same" if verdict == "not distinguishable" else "better" if c.diff > 0 else "worse"
                parts.append(f'<td class="{kind}" data-a="{esc(a)}" data-b="{esc(b)}" data-diff="{c.diff!r}" '
                             f'title="{esc(verdict)}; p={c.p:.4f}; {c.n} items">{c.diff:+.4f}<br>'
                             f'<span class="ci">[{c.low:+.4f}, {c.high:+.4f}]</span><br>'
                             f'<span class="verdict">{esc(verdict)}</span></td>')
            parts.append("</tr>")
        parts.append("</tbody></table>")
    sec.body = "".join(parts)
    return sec


def _ranks(means: dict[str, float]) -> dict[str, int]:
    order = sorted(means, key=lambda k: -means[k])
    return {k: i + 1 for i, k in enumerate(order)}


def public_vs_yours(rows: list[ResultRow]) -> Section:
    sec = Section("public-vs-yours", "Public vs your data")
    ok = [r for r in rows if r.status == Status.OK and r.score is not None and r.data]
    sides = {d: [r for r in ok if r.data == d] for d in ("public", "local")}
    if not sides["public"] or not sides["local"]:
        have = "built-in (public)" if sides["public"] else "local (your own)"
        sec.omitted = (f"every task here is {have}: add tasks of the other kind to see whether a model that ranks "
                       "high on public benchmarks holds up on your own data" if ok else "no task has a score yet")
        return sec
    labels = labels_of(rows)
    means: dict[str, dict[str, float]] = {}
    for side, rs in sides.items():
        acc: dict[str, list[float]] = {}
        for r in rs:
            acc.setdefault(labels[group_key(r)], []).append(r.score)
        means[side] = {k: sum(v) / len(v) for k, v in acc.items()}
    both = [k for k in means["public"] if k in means["local"]]
    if len(both) < 2:
        sec.omitted = "fewer than two runs have both public and local tasks: nothing to rank"
        return sec
    pub = _ranks({k: means["public"][k] for k in both})
    loc = _ranks({k: means["local"][k] for k in both})
    from scipy.stats import spearmanr

    rho = float(spearmanr([pub[k] for k in both], [loc[k] for k in both])[0]) if len(both) > 2 else float("nan")
    half = (len(both) + 1) // 2
    parts = [f"<p>Each run's mean score on built-in tasks (public: {len({r.task for r in sides['public']})} tasks) "
             f"and on tasks declared from local data (yours: {len({r.task for r in sides['local']})} tasks), and its "
             f"rank on each. Spearman rank correlation: <b id=\"rank-rho\">{_num(rho, '.3f') or 'n/a (2 runs)'}"
             "</b>. <b>drops</b>: in the top half on public tasks but ranked lower on yours (public leaderboards "
             "get hill-climbed; your own sets tell).</p>",
             '<table class="sortable" id="public-table"><thead><tr><th data-col="0">run</th><th data-col="1">public '
             'mean</th><th data-col="2">public rank</th><th data-col="3">your mean</th><th data-col="4">your rank'
             '</th><th data-col="5">flag</th></tr></thead><tbody>']
    for k in sorted(both, key=lambda k: pub[k]):
        flag = "drops" if pub[k] <= half and loc[k] > pub[k] else ""
        parts.append(f'<tr data-run="{esc(k)}"><td>{esc(k)}</td><td data-value="{means["public"][k]!r}">'
                     f'{means["public"][k]:.4f}</td><td data-value="{pub[k]}">{pub[k]}</td>'
                     f'<td data-value="{means["local"][k]!r}">{means["local"][k]:.4f}</td><td data-value="{loc[k]}">'
                     f'{loc[k]}</td><td class="{flag}">{flag}</td></tr>')
    parts.append("</tbody></table>")
    sec.body = "".join(parts)
    return sec


def _index_size(rows: list[ResultRow]) -> tuple[float | None, str]:
    """The largest Retrieval index of a run: dims x bytes per dimension x documents."""
    best: tuple[float | None, str] = (None, "")
    for r in rows:
        s = r.stack
        dims, docs = s.get("embedding_dim"), s.get("corpus")
        dtype = s.get("output_dtype") or s.get("precision") or "fp32"
        per = DTYPE_BYTES.get(str(dtype).lower(), 4)
        if task_types.stage2_of(r.task_type) == "top_k" and r.stage != "stage2" and dims and docs:
            size = dims * per * docs
            if best[0] is None or size > best[0]:
                best = (size, f"{dims} dims x {per:g} B ({dtype}) x {docs} docs")
    return best


def _pareto(points: list[tuple[float, float]]) -> list[bool]:
    """Whether each (speed, score) point is on the front: no other point is at least as fast and as good, and
    better in one."""
    return [not any(s2 >= s and q2 >= q and (s2 > s or q2 > q) for s2, q2 in points) for s, q in points]


def speed_quality(rows: list[ResultRow], averages: list[Averages]) -> Section:
    import plotly.graph_objects as go

    sec = Section("speed", "Speed vs quality")
    labels = labels_of(rows)
    points = [a for a in averages if a.texts_per_s and a.overall is not None]
    if len(points) < 2:
        sec.omitted = (f"{len(points)} run with a speed: a chart needs two" if points else
                       "no run recorded texts/s (its result files have no sample sizes)")
        return sec
    sizes = {a.label: _index_size([r for r in rows if labels[group_key(r)] == a.label]) for a in points}
    front = _pareto([(a.texts_per_s, a.overall) for a in points])
    fig = go.Figure()
    hover = [f"<b>{esc(a.label)}</b><br>{a.texts_per_s:.1f} texts/s<br>mean {a.overall:.4f} over {a.n_tasks} tasks"
             + (f"<br>index {sizes[a.label][0] / 1e6:.2f} MB ({esc(sizes[a.label][1])})" if sizes[a.label][0] else "")
             for a in points]
    fig.add_scatter(x=[a.texts_per_s for a in points], y=[a.overall for a in points], mode="markers+text",
                    text=[a.label for a in points], textposition="top center", hovertext=hover,
                    hovertemplate="%{hovertext}<extra></extra>", name="runs",
                    marker={"size": 14, "symbol": ["star" if f else "circle" for f in front],
                            "color": ["#e67e22" if f else "#2c3e50" for f in front]})
    on = sorted((a.texts_per_s, a.overall) for a, f in zip(points, front, strict=True) if f)
    fig.add_scatter(x=[p[0] for p in on], y=[p[1] for p in on], mode="lines", line={"dash": "dot", "color": "#e67e22"},
                    name="Pareto front", hoverinfo="skip")
    fig.update_layout(title="Speed vs quality (stars: the Pareto front)", height=420,
                      xaxis={"title": "texts / s (texts evaluated / evaluation time, over all tasks)", "type": "log"},
                      yaxis={"title": "mean main score (all tasks)"})
    table = ['<table class="sortable" id="speed-table"><thead><tr><th data-col="0">run</th><th data-col="1">texts/s'
             '</th><th data-col="2">mean score</th><th data-col="3">index size (MB)</th><th data-col="4">index</th>'
             '<th data-col="5">Pareto</th></tr></thead><tbody>']
    for a, f in zip(points, front, strict=True):
        size, what = sizes[a.label]
        table.append(f'<tr data-run="{esc(a.label)}"><td>{esc(a.label)}</td><td data-value="{a.texts_per_s!r}">'
                     f'{a.texts_per_s:.1f}</td><td data-value="{a.overall!r}">{a.overall:.4f}</td>'
                     f'<td data-value="{"" if size is None else size / 1e6!r}">'
                     f'{_num(size / 1e6 if size else None, ".3f")}'
                     f'</td><td>{esc(what)}</td><td>{"front" if f else ""}</td></tr>')
    table.append("</tbody></table>")
    sec.body = (_figure_html(fig, "speed-chart") + "<p>Speeds are measured on this machine, with whatever else ran "
                "on it; a rerun whose embeddings came from the cache looks faster. Index size: the largest "
                "Retrieval corpus of a run, dimensions x bytes per dimension x documents.</p>" + "".join(table))
    return sec


def _result_meta(path: str) -> dict[str, Any]:
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


def provenance(rows: list[ResultRow], jobs: list[JobRow]) -> Section:
    import platform

    sec = Section("provenance", "Provenance")
    labels = labels_of(rows)
    done = [r for r in rows if r.path.endswith(".json") and r.status == Status.OK]
    if not done:
        sec.omitted = "no result file yet"
        return sec
    cols = ("run", "task", "model", "revision", "source", "precision", "data", "data revision", "sample",
            "mteb", "evaluated")
    out = ['<table class="sortable" id="provenance-table"><thead><tr>'
           + "".join(f'<th data-col="{i}">{c}</th>' for i, c in enumerate(cols)) + "</tr></thead><tbody>"]
    from rag_eval.report.rows import clock_text

    for r in done:
        obj = _result_meta(r.path)
        extra = obj.get("rag_eval") if isinstance(obj.get("rag_eval"), dict) else {}
        cfg = extra.get("model_config") or {}
        vals = (labels[group_key(r)], r.task, extra.get("model_name_or_path") or r.model, r.revision,
                extra.get("model_source", ""), cfg.get("precision", ""), extra.get("dataset_path", ""),
                obj.get("dataset_revision", ""), r.sample, obj.get("mteb_version", ""), clock_text(r.date, ""))
        out.append("<tr>" + "".join(f'<td data-value="{esc(v)}">{esc(v)}</td>' for v in vals) + "</tr>")
    out.append("</tbody></table>")
    commands = [j for j in jobs if j.overrides or j.label]
    if commands:
        out.append("<h4>Jobs and their commands</h4><ul>")
        out += [f"<li><code>{esc(j.label)}</code> {esc(j.overrides) or '(defaults)'}: {esc(j.state)}, "
                f"{j.ok} ok, {j.failed} failed{', ' + esc(j.error) if j.error else ''}</li>" for j in commands]
        out.append("</ul>")
    out.append(f"<p>Report built with Python {esc(platform.python_version())}, {_versions()}.</p>")
    sec.body = "".join(out)
    return sec


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    parts = []
    for name in ("rag_eval", "mteb", "sentence-transformers", "transformers", "torch", "plotly"):
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    return ", ".join(esc(p) for p in parts)


# --------------------------------------------------------------------------- the page



ASSETS = Path(__file__).parent / "assets"


def _asset(name: str) -> str:
    """The page's own CSS / JavaScript (rag_eval/report/assets), inlined into it."""
    return (ASSETS / name).read_text(encoding="utf-8")


def page(title: str, status: str, sections: list[Section], details: dict[str, Any]) -> str:
    nav = "".join(f'<a href="#{s.id}">{esc(s.title)}</a>' for s in sections)
    body = []
    for s in sections:
        inner = s.body if not s.omitted else f'<p class="omitted">Left out: {esc(s.omitted)}.</p>'
        body.append(f'<section id="{s.id}" data-omitted="{"1" if s.omitted else ""}"><h2>{esc(s.title)}</h2>'
                    f"{inner}</section>")
    data = json.dumps(details, ensure_ascii=False).replace("</", "<\\/")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_asset("report.css")}</style>'
            f'<script src="{PLOTLY_JS}"></script></head><body><header><h1>{esc(title)}</h1>'
            f'<div class="status">{esc(status)}</div></header><nav>{nav}</nav>'
            f'<script type="application/json" id="query-data">{data}</script><main>{"".join(body)}</main>'
            f'<script>{_asset("report.js")}</script></body></html>')



def write_html(folder: Path, rows: list[ResultRow], jobs: list[JobRow], averages: list[Averages],
               cis: dict[str, str], matrix: list[dict[str, Any]], analyses: list[TaskFailures],
               status: str, n_resamples: int, seed: int) -> Path:
    """Write ``report.html`` (and ``plotly.min.js`` once) into ``folder``; returns the page's path."""
    evaluated = [r for r in rows if r.status not in PENDING]
    details: dict[str, Any] = {}
    builders = (
        lambda: leaderboard(rows, averages, cis),
        lambda: heatmap(rows),
        lambda: two_stage(matrix, analyses, details),
        lambda: differences(evaluated, n_resamples, seed, folder / CACHE / COMPARE_MEMO),
        lambda: public_vs_yours(evaluated),
        lambda: speed_quality(evaluated, averages),
        lambda: provenance(rows, jobs),
    )
    titles = ("Leaderboard", "Per-task heatmap", "Two-stage: retriever x reranker", "Differences that are real",
              "Public vs your data", "Speed vs quality", "Provenance")
    ids = ("leaderboard", "heatmap", "two-stage", "differences", "public-vs-yours", "speed", "provenance")
    sections = []
    for build, title, sid in zip(builders, titles, ids, strict=True):
        try:
            sections.append(build())
        except Exception as exc:  # a report with one section less beats no report
            logger.warning("report.html: could not build %s: %s: %s", title, type(exc).__name__, exc)
            sections.append(Section(sid, title, omitted=f"could not be built ({type(exc).__name__}: {exc})"))
    _write_plotly_js(folder)
    path = folder / REPORT_HTML
    atomic_write_text(path, page(f"rag_eval report: {folder.resolve().name}", status, sections, details))
    return path
