"""Read every result file under a folder into :class:`ResultRow` s.

Understood layouts (mixed freely; one walk finds them all):

* rag_eval's: ``<folder>/[stage1|stage2/]<model>/<revision>/[experiments/<x>/]<Task>.json`` -
  an mteb ``TaskResult`` JSON plus a ``rag_eval`` block (model, revision, stage, task_type, sample);
* mteb's ``ResultCache``: ``results/<model>/<revision>/<Task>.json`` - no ``rag_eval`` block, so
  the task type and main metric come from ``mteb.get_task(name).metadata`` (when mteb knows the
  task), the model name from ``model_meta.json`` (else the folder name, ``__`` read as ``/``);
* ``failures.json`` (at the top of an output folder, see :mod:`rag_eval.results.failures`): tasks
  that failed and so have no result file; they become rows with status ``FAILED``;
* ``.runs/<job>.json`` (see :mod:`rag_eval.results.runs`): what each job planned. A planned task
  with neither a result nor a failure becomes a row with status ``running`` (its job is alive) or
  ``missing`` (its job ended, stopped on an error or died). :func:`collect_jobs` lists the jobs.

Skipped: ``model_meta.json``, ``failures.json``, ``run_settings*``, rag_eval's own reports,
hidden folders (``.hydra``, ``.cache``), ``predictions/`` and ``per_item/`` folders. A JSON file that cannot be
read or is not a task result is skipped with a warning.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from rag_eval import task_types
from rag_eval.results import FAILURES_FILE, Status, job_state, main_score_of, read_failures, read_jobs, split_scores
from rag_eval.results.layout import PER_ITEM, PREDICTIONS, model_folder_of, parse, runs_folder

logger = logging.getLogger("rag_eval.report")

_SKIP_FILES = {"model_meta.json", FAILURES_FILE, "summary.json"}
_SKIP_DIRS = {PREDICTIONS, PER_ITEM, "__pycache__"}

#: statuses of planned tasks that have no result yet (left out of averages and charts)
PENDING = (Status.RUNNING, Status.MISSING)


@dataclass
class ResultRow:
    """One task of one model (and stage) in a report."""

    stage: str  # "" | "stage1" | "stage2"
    task_type: str
    task: str
    model: str
    revision: str
    metric: str
    score: float | None  # the task's main score (mean over splits and subsets)
    status: Status = Status.OK  # ok | FAILED | running | missing (see PENDING)
    error: str = ""
    seconds: float | None = None  # mteb's evaluation_time
    sample: str = "all"
    texts: int | None = None  # texts (or query-document pairs) evaluated, see texts_evaluated
    texts_per_s: float | None = None
    experiment: str = ""  # stage 2: ``<stage-1 model>_<revision>_top<k>``
    unk_rate: float | None = None  # share of the task's tokens the model's vocabulary does not know
    ties: str = ""  # a reranker's scores on the task: "constant" or "mostly_tied" (reranker.ties), else ""
    # retrieval stacks (rag_eval result files): queries evaluated; stage 2: stage1_model, stage1_revision,
    # stage1_variant, top_k, stage1_recall_at_top_k; stage 1: variant
    stack: dict[str, Any] = field(default_factory=dict, repr=False)
    data: str = ""  # "public": a built-in task (a hub dataset mteb knows) | "local": declared from local data
    path: str = ""
    date: float | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        """The model / stage / experiment this row belongs to (one bar colour, one point)."""
        label = f"{self.stage}: {self.model}" if self.stage else self.model
        return f"{label} [{self.experiment}]" if self.experiment else label

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def texts_evaluated(task_type: str, sample: dict[str, Any], stage: str | None = None,
                    top_k: int | None = None) -> int | None:
    """How many texts a task's evaluation embedded (or pairs a reranker scored), from its sample.

    Counted from the ``sample`` block rag_eval stores (the sizes after ``limits`` / ``corpus_size``):

    * Retrieval, Reranking: queries + corpus documents. In stage 2 the cross-encoder scores
      query-document pairs instead: queries x ``top_k`` for Retrieval, the candidate documents
      for Reranking;
    * STS, PairClassification: 2 x rows (two sentences per pair);
    * Classification, Clustering and other row tasks: rows. For Classification this counts the
      evaluated test texts only - mteb also embeds a few-shot training sample - so it is a
      lower bound.

    None when the sample holds no sizes (no ``limits`` given, or a plain mteb result): then
    texts/s is not computed. texts/s = texts / mteb's ``evaluation_time``; with
    ``cache_embeddings`` a rerun that reads its embeddings from the cache looks faster.
    """
    return task_types.texts(task_type, sample, stage, top_k)


def sample_text(sample: dict[str, Any]) -> str:
    """The sample drawn, in a few words: ``60/225 q, 1400/1400 docs``, ``50/1361 rows`` or ``all``."""
    try:
        if "queries" in sample:
            return (f"{sample['queries']}/{sample['queries_total']} q, "
                    f"{sample['corpus']}/{sample['corpus_total']} docs")
        if "rows" in sample:
            return f"{sample['rows']}/{sample['rows_total']} rows"
    except KeyError:
        return "?"
    return "all"


@cache
def mteb_task_meta(name: str) -> tuple[str, str] | None:
    """``(type, main_score)`` of a task mteb knows by ``name``; None for local / unknown tasks."""
    try:
        import mteb

        meta = mteb.get_task(name).metadata
        return meta.type, meta.main_score
    except Exception:
        return None


def _main_metric(split_metrics: dict[str, Any], task_type: str, known: str | None) -> str:
    """The metric whose value is the main score: mteb's name when known, else inferred."""
    if known:
        return known
    flat = next(iter(split_metrics.values()), {}) if split_metrics else {}
    if "subsets" in flat:
        flat = next(iter(flat["subsets"].values()), {})
    main = flat.get("main_score")
    if main is None:
        return ""
    default = task_types.main_score(task_type)
    if default and _close(flat.get(default), main):
        return default
    for key, value in flat.items():
        if key != "main_score" and _close(value, main):
            return key
    return default or "main_score"


def _close(a: Any, b: Any) -> bool:
    return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, abs_tol=1e-9)


def _meta_name(folder: str) -> str | None:
    path = Path(folder) / "model_meta.json"
    try:
        name = json.loads(path.read_text(encoding="utf-8")).get("name")
        return name if isinstance(name, str) and name else None
    except Exception:
        return None


def _row_from_result(path: Path, rel: Path, obj: dict[str, Any]) -> ResultRow:
    extra = obj.get("rag_eval") if isinstance(obj.get("rag_eval"), dict) else None
    task = obj["task_name"]
    splits = split_scores(SimpleNamespace(scores=obj["scores"]))
    score = main_score_of(splits)
    place, _ = parse(rel)
    stage, model_dir, rev_dir, experiment = place.stage, place.model, place.revision, place.experiment
    if extra is not None:
        stage = extra.get("stage") or ""
        model, revision = extra.get("model") or model_dir, extra.get("revision") or rev_dir
        task_type = extra.get("task_type") or ""
        meta = None if task_type else mteb_task_meta(task)
        task_type = task_type or (meta[0] if meta else "unknown")
        metric = _main_metric(splits, task_type, extra.get("main_metric"))
        sample = extra.get("sample") or {}
        texts = texts_evaluated(task_type, sample, stage, extra.get("top_k"))
        unk_rate = (extra.get("vocabulary") or {}).get("unk_rate")
        ties = (extra.get("reranker") or {}).get("ties") or {}
        tied = "constant" if ties.get("constant") else "mostly_tied" if ties.get("mostly_tied") else ""
        stack = {k: extra[k] for k in ("stage1_model", "stage1_revision", "stage1_variant", "top_k",
                                       "stage1_recall_at_top_k") if extra.get(k) is not None}
        retrieval = extra.get("retrieval") or {}
        stack["variant"] = retrieval.get("variant") or extra.get("variant") or ""
        stack["queries"] = sample.get("queries")
        stack["corpus"] = sample.get("corpus")  # the index size of the report: dims x bytes x documents
        stack["embedding_dim"] = retrieval.get("embedding_dim")
        stack["output_dtype"] = retrieval.get("output_dtype")
        stack["precision"] = (extra.get("model_config") or {}).get("precision")
        data = "local" if _is_local(extra.get("dataset_path"), obj.get("dataset_revision")) else "public"
    else:  # plain mteb result (ResultCache): ask mteb about the task
        meta = mteb_task_meta(task)
        task_type = meta[0] if meta else "unknown"
        metric = _main_metric(splits, task_type, meta[1] if meta else None)
        model = _meta_name(str(model_folder_of(path, place))) or model_dir.replace("__", "/")
        revision, sample, texts, unk_rate, stack, tied = rev_dir, {}, None, None, {}, ""
        data = "public" if meta else ""
    seconds = obj.get("evaluation_time")
    seconds = float(seconds) if isinstance(seconds, (int, float)) else None
    speed = texts / seconds if texts and seconds else None
    date = obj.get("date")
    return ResultRow(
        stage=stage, task_type=task_type, task=task, model=model, revision=revision, metric=metric,
        score=score, seconds=seconds, sample=sample_text(sample) if extra is not None else "",
        texts=texts, texts_per_s=speed, experiment=experiment, path=str(path),
        unk_rate=unk_rate if isinstance(unk_rate, (int, float)) else None, stack=stack, data=data, ties=tied,
        date=float(date) if isinstance(date, (int, float)) else None,
    )


def _is_local(dataset_path: Any, dataset_revision: Any) -> bool:
    """Whether a task's data was declared from a local folder (rag_eval gives it a ``local-`` revision)
    rather than loaded from a hub."""
    if isinstance(dataset_revision, str) and dataset_revision.startswith("local-"):
        return True
    return isinstance(dataset_path, str) and (os.path.isabs(dataset_path) or dataset_path.startswith("."))


def _rows_from_failures(path: Path) -> list[ResultRow]:
    return [ResultRow(
        stage=e.get("stage") or "", task_type=e.get("task_type") or "", task=e["task"],
        model=e.get("model") or "", revision=e.get("revision") or "", metric=e.get("metric") or "",
        score=None, status=Status.FAILED, error=e.get("error") or "", seconds=e.get("seconds"),
        sample=sample_text(e.get("sample") or {}), experiment=e.get("experiment") or "",
        path=str(path), date=e.get("time"),
    ) for e in read_failures(path)]


def collect_results(folder: str | Path, *, planned: bool = True) -> list[ResultRow]:
    """Every task result (and recorded failure) under ``folder``, sorted by stage, model, task.

    A failure recorded in ``failures.json`` replaces an older result file of the same task,
    model, revision and stage (the latest attempt failed); a newer result file wins over it.
    With ``planned``, tasks that a job planned (``.runs/``) and that have neither are added as
    ``running`` / ``missing`` rows. Raises FileNotFoundError when ``folder`` is not a directory.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"results folder '{folder}' not found")
    results: dict[tuple, ResultRow] = {}
    failures: list[ResultRow] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if not name.endswith(".json") or name.startswith("."):
                continue
            path = Path(dirpath) / name
            if name == FAILURES_FILE:
                failures.extend(_rows_from_failures(path))
                continue
            if name in _SKIP_FILES or name.startswith("run_settings"):
                continue
            try:
                obj = json.loads(path.read_text(encoding="utf-8"))
            except Exception as exc:
                logger.warning("skipping unreadable result %s (%s)", path, exc)
                continue
            if not isinstance(obj, dict) or not isinstance(obj.get("scores"), dict) or "task_name" not in obj:
                logger.warning("skipping %s: not an mteb task result", path)
                continue
            try:
                row = _row_from_result(path, path.relative_to(root), obj)
            except Exception as exc:
                logger.warning("skipping unreadable result %s (%s)", path, exc)
                continue
            results[_key(row)] = row
    for row in failures:
        done = results.get(_key(row))
        if done is None or (done.date or 0) <= (row.date or 0):
            if done is not None and not row.task_type:
                row.task_type = done.task_type
            results[_key(row)] = row
    if planned:
        results.update(_pending_rows(read_jobs(root), list(results.values()), root))
    return sorted(results.values(), key=lambda r: (r.stage, r.model, r.revision, r.experiment, r.task_type, r.task))


def _key(row: ResultRow) -> tuple:
    return row.stage, row.model, row.revision, row.experiment, row.task


# --------------------------------------------------------------------------- jobs (.runs/)


@dataclass
class JobRow:
    """One job that wrote (or meant to write) into the folder, from its record in ``.runs/``."""

    job: str
    label: str
    state: str  # running | done | error | died (see rag_eval.results.runs.job_state)
    host: str
    pid: int | None
    started: float | None
    updated: float | None
    seconds: float | None
    planned: int
    ok: int
    failed: int
    cached: int
    not_done: int  # planned tasks with neither a result nor a failure (yet)
    error: str = ""
    overrides: str = ""
    log: str = ""  # the job's own log file (Hydra's job log), where known

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _done_index(rows: list[ResultRow]) -> dict[tuple, list[tuple[str, str]]]:
    index: dict[tuple, list[tuple[str, str]]] = {}
    for r in rows:
        if r.status not in PENDING:
            index.setdefault((r.stage, r.model, r.task), []).append((r.revision, r.experiment))
    return index


def _has_outcome(entry: dict[str, Any], index: dict[tuple, list[tuple[str, str]]]) -> bool:
    """Whether a planned task has a result or a failure (a plan made before the models loaded has
    no revision or experiment yet: any matches)."""
    revision, experiment = entry.get("revision") or "", entry.get("experiment") or ""
    return any((not revision or revision == rev) and (not experiment or experiment == exp)
               for rev, exp in index.get((entry.get("stage") or "", entry.get("model") or "", entry["task"]), ()))


def _planned(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in record.get("planned") or [] if isinstance(e, dict) and isinstance(e.get("task"), str)]


def clock_text(stamp: Any, unknown: str = "?") -> str:
    """A record's time stamp as local ``YYYY-mm-dd HH:MM:SS``."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if isinstance(stamp, (int, float)) else unknown


def _why(record: dict[str, Any], state: str) -> str:
    who = f"{record.get('label') or 'job'} ({record.get('job')})"
    updated = clock_text(record.get("updated"))
    if state == "running":
        return f"{who} is running on {record.get('host')}, pid {record.get('pid')}; last update {updated}"
    if state == "died":
        return f"planned by {who}, whose process is gone (killed?); last update {updated}"
    if state == "error":
        return f"planned by {who}, which stopped: {record.get('error')}"
    return f"planned by {who}, which ended without it"


def _pending_rows(jobs: list[dict[str, Any]], rows: list[ResultRow], root: Path) -> dict[tuple, ResultRow]:
    index, out = _done_index(rows), {}
    for record in jobs:  # oldest first: a later job's word on a task wins, except over a running one
        state = job_state(record)
        status = Status.RUNNING if state == "running" else Status.MISSING
        for e in _planned(record):
            if _has_outcome(e, index):
                continue
            row = ResultRow(stage=e.get("stage") or "", task_type=e.get("task_type") or "", task=e["task"],
                            model=e.get("model") or "", revision=e.get("revision") or "", metric="", score=None,
                            status=status, error=_why(record, state), sample="",
                            experiment=e.get("experiment") or "",
                            path=str(runs_folder(root) / f"{record.get('job')}.json"), date=record.get("updated"))
            old = out.get(_key(row))
            if old is None or old.status != Status.RUNNING or status == Status.RUNNING:
                out[_key(row)] = row
    return out


def collect_jobs(folder: str | Path) -> list[JobRow]:
    """The jobs recorded under ``<folder>/.runs``, oldest first, with how far each got."""
    root = Path(folder)
    records = read_jobs(root)
    if not records:
        return []
    index = _done_index(collect_results(root, planned=False))
    out = []
    for record in records:
        state, done = job_state(record), record.get("done") if isinstance(record.get("done"), dict) else {}
        launcher = record.get("launcher") if isinstance(record.get("launcher"), dict) else {}
        planned = _planned(record)
        pid = record.get("pid")
        out.append(JobRow(
            job=str(record.get("job") or ""), label=str(record.get("label") or ""), state=state,
            host=str(record.get("host") or ""), pid=pid if isinstance(pid, int) else None,
            started=record.get("started"), updated=record.get("updated"), seconds=record.get("seconds"),
            planned=len(planned), ok=int(done.get(Status.OK.key) or 0), failed=int(done.get(Status.FAILED.key) or 0),
            cached=int(done.get(Status.CACHED.key) or 0), not_done=sum(not _has_outcome(e, index) for e in planned),
            error=str(record.get("error") or ""), overrides=" ".join(map(str, launcher.get("overrides") or [])),
            log=str(launcher.get("log") or ""),
        ))
    return out
