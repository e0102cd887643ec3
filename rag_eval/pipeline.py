"""``run_task``: the whole chain config -> resolve -> stages -> results, for plugins and the CLI."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rag_eval import errors
from rag_eval.config import RunConfig, load_config
from rag_eval.errors import ConfigError, RedactingFilter, RunInterrupted, one_line
from rag_eval.results import JobInfo, JobRecord, Status, TaskOutcome, check_writable, planned_task, write_failures

logger = logging.getLogger("rag_eval")
job_logger = logging.getLogger("rag_eval.jobs")  # one progress line per task, one summary line per job

#: outcomes that end without a result file: nothing more to run, and no scores
SETTLED = (Status.FAILED, Status.SKIPPED)

_LEVELS = {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO, 3: logging.DEBUG}


class RunScores(dict):
    """``{task: {split: {metric: value, "main_score": ...}}}`` plus what else the run knows.

    In a two-stage run each task holds its stages: ``{task: {"stage1": {...}, "stage2": {...}}}``.

    ``failed`` maps each failed task to its one-line error; ``skipped`` the tasks a model cannot score
    (BM25 on STS, ...) to why; ``outcomes`` holds every :class:`TaskOutcome` (per stage, with timings
    and samples). A ``top_k`` sweep keys stage 2 per value: ``"stage2@top10"``, ``"stage2@top100"``.
    """

    def __init__(self, outcomes: list[TaskOutcome]):
        super().__init__()
        self.outcomes = outcomes
        self.plan: Any = None  # eval.dry_run: the plan (stages/dry_run.py DryRun), and no scores
        self.failed = {(f"{o.task}/{o.stage}" if o.stage else o.task): o.error
                       for o in outcomes if o.status == Status.FAILED}
        self.skipped = {o.task: o.error for o in outcomes if o.status == Status.SKIPPED}
        sweeps = {o.task for o in outcomes if o.top_k is not None} if len(
            {o.top_k for o in outcomes if o.top_k is not None}) > 1 else set()
        for o in outcomes:
            if o.status in SETTLED:
                continue
            if o.stage:  # two-stage: {task: {stage: {split: metrics}}}; a top_k sweep: "stage2@top<k>"
                key = f"{o.stage}@top{o.top_k}" if o.task in sweeps and o.top_k is not None else o.stage
                self.setdefault(o.task, {})[key] = o.scores
            else:
                self[o.task] = o.scores

    @property
    def ok(self) -> bool:
        return not self.failed

    @classmethod
    def of_runs(cls, parts: dict[str, RunScores]) -> RunScores:
        """Several runs of one config (several models): ``{label: RunScores}``, with every run's outcomes,
        and ``failed`` / ``skipped`` keyed ``label/task``."""
        combined = cls([])
        for label, part in parts.items():
            combined[label] = part
            combined.outcomes += part.outcomes
            combined.failed.update({f"{label}/{k}": v for k, v in part.failed.items()})
            combined.skipped.update({f"{label}/{k}": v for k, v in part.skipped.items()})
        return combined


def run_label(run: RunConfig) -> str:
    """``model`` or ``retriever+reranker``: the key of one run among several of one config."""
    from rag_eval.resolve.models import expected_name

    return "+".join(expected_name(m) for m in run.models)


def _setup_logging(verbosity: int, multirun: bool = False) -> None:
    level = _LEVELS.get(max(0, min(3, verbosity)), logging.INFO)
    logging.getLogger("rag_eval").setLevel(level)
    # a multirun job's log (a cluster job nobody watches) gets its progress from verbosity 1 on
    job_logger.setLevel(logging.INFO if verbosity >= 2 or (multirun and verbosity >= 1) else logging.WARNING)
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.WARNING)
    for handler in logging.getLogger().handlers:  # console and Hydra's job log: never an API key
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    # mteb and sentence-transformers talk a lot at INFO: keep them at WARNING unless debugging
    for name in ("mteb", "sentence_transformers", "transformers", "datasets", "httpx", "bm25s"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbosity >= 3 else logging.WARNING)
    if verbosity < 2:  # library progress bars (weights, dataset maps) are noise in a summary run
        import datasets
        import transformers

        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()


def run_task(cfg: Any, *, base_dir: str | Path | None = None, job: JobInfo | None = None) -> RunScores:
    """Evaluate the configured model(s) on the configured tasks; write and return the scores.

    ``cfg`` is an EvalScope-style dict, a Hydra DictConfig, a YAML path or a RunConfig.
    Relative data paths are read against ``base_dir`` (default: the working directory).
    ``job`` names this run in its progress lines and its record (``<output_folder>/.runs/``);
    the CLI passes what Hydra knows about the job (multirun number, overrides, log folder).

    Bad input, and an output folder that cannot be written, raise :class:`ConfigError` (one line)
    before any model loads. A ``KeyboardInterrupt`` mid-run becomes :class:`RunInterrupted` (still a
    ``KeyboardInterrupt``) once the finished tasks are recorded; its line names them.
    """
    run: RunConfig = load_config(cfg)
    from rag_eval.resolve.backends import check_machine

    check_machine(run.models)  # what this machine cannot run (bf16 on a CPU without it), as bad input
    output_folder = check_writable(run.eval.output_folder)  # one line now, not after the first task
    _setup_logging(run.eval.verbosity, multirun=bool(job and job.multirun))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from rag_eval import _compat

    _compat.check()  # one line if a library lost an internal name rag_eval relies on
    runs = run.pairs()
    with _imports_frozen():
        if len(runs) == 1:
            return _run(run, output_folder, base_dir, job)
        # EvalScope's dispatch of several models: each bi-encoder in turn, or every retriever x reranker
        # pair; one after the other (a retriever's embeddings are computed once, then read from the cache)
        parts: dict[str, RunScores] = {}
        for i, one in enumerate(runs, 1):
            label = run_label(one)
            logger.info("rag_eval: run %d of %d: %s", i, len(runs), label)
            parts[label if label not in parts else f"{label}#{i}"] = _run(one, output_folder, base_dir, job)
        return RunScores.of_runs(parts)


@contextmanager
def _imports_frozen() -> Iterator[None]:
    """Keep the objects that exist now (torch, mteb, datasets, ...: ~780k) out of the cyclic GC's
    full collections during the run, and give them back after it.

    A full collection walks every tracked object: 0.42 s each here, striking at random points of a
    run (a chart, a small task). Frozen objects are not freed, so they are unfrozen at the end and
    any garbage among them is collected as usual. A host that froze its own objects is left alone.
    """
    if gc.get_freeze_count():
        yield
        return
    import mteb  # noqa: F401  (every run imports them; imported here they are among the frozen)
    import sentence_transformers  # noqa: F401

    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _run(run: RunConfig, output_folder: Path, base_dir: str | Path | None, job: JobInfo | None) -> RunScores:
    from rag_eval.report import print_summary, write_reports
    from rag_eval.resolve.tasks import resolve_tasks

    base = Path(base_dir) if base_dir else None
    tasks = resolve_tasks(run.eval, base)
    # EvalScope's rule: a bi-encoder and a reranker but no Retrieval task -> the reranker alone
    alone = run.cross_encoder is not None and reranker_alone(tasks)
    if run.eval.dry_run:
        return _dry_run(run, tasks, output_folder, alone)
    check_model_paths(run)  # a local model folder that is not there: before any data is looked up
    check_sources(tasks, run.eval.hub)  # every task's data on disk (or downloaded) before any model loads
    record = JobRecord(output_folder, job)
    record.plan(plan(run, tasks, alone), status="starting")  # before any model loads: a job that dies shows

    def done(outcome: TaskOutcome) -> None:  # as each task ends: the record, and a failure visible at once
        write_failures([outcome], output_folder)
        record.task_done(outcome)

    outcomes: list[TaskOutcome] = []  # the stages append as they go: an interrupt still knows what finished

    def stop_line(signal_name: str) -> str:  # the CLI's watchdog, when this thread cannot take a signal
        job_logger.info("%s", record.finish(error=f"interrupted ({signal_name})"))
        return _stop_summary(signal_name, tasks, outcomes)[0]

    errors.stop_line = stop_line
    try:
        _run_stages(run, tasks, alone, output_folder, record, done, outcomes)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM through the CLI's handler
        # the record first: the reports that interrupted() rebuilds then show this job as stopped
        job_logger.info("%s", record.finish(error=f"interrupted ({getattr(exc, 'signal_name', 'SIGINT')})"))
        raise interrupted(exc, tasks, outcomes, output_folder) from None
    except BaseException as exc:  # a config error, a full disk, a crash: the record says where it stopped
        job_logger.info("%s", record.finish(error=f"{type(exc).__name__}: {one_line(str(exc))}"[:500]))
        raise
    finally:
        errors.stop_line = None
    scores = RunScores(outcomes)
    write_failures(outcomes, output_folder)  # failed tasks have no result file: keep them visible
    summary = record.finish()
    files = write_reports(output_folder)  # the summary, averages and charts of everything in output_folder
    if run.eval.verbosity >= 1:
        print_summary(outcomes)
        print(where_line(outcomes, files))
    job_logger.info("%s", summary)
    return scores


def check_model_paths(run: RunConfig) -> None:
    """Every model given as a local path (``./x``, ``/x``, ``~/x``) exists."""
    from rag_eval.resolve.hub import check_local_path

    for cfg in run.models:
        if not (cfg.is_api or cfg.is_search):
            check_local_path("model", cfg.model_name_or_path)


def check_sources(tasks: list[Any], hub: str) -> None:
    """Find every task's data before the first model loads: a dataset missing from the hub cache (offline),
    or a hub copy in a layout mteb cannot read, stops the run in one line now, not after hours of encoding."""
    from rag_eval.resolve.task_data import check_source

    for task in tasks:
        check_source(task, hub)


def _dry_run(run: RunConfig, tasks: list[Any], output_folder: Path, alone: bool) -> RunScores:
    """``eval.dry_run``: the plan of every task (see ``stages/dry_run.py``); one line if a task is not ready."""
    from rag_eval.stages.dry_run import dry_run, print_plan

    plan = dry_run(run, tasks, output_folder, alone)
    if run.eval.verbosity >= 1 or not plan.ok:
        print_plan(plan, run.eval.limits)
    if not plan.ok:
        bad = next(t for t in plan.tasks if t.error)
        more = sum(bool(t.error) for t in plan.tasks) - 1
        raise ConfigError(f"dry run: {bad.error}" + (f" (and {more} more task(s) not ready, see the table)"
                                                     if more else ""))
    scores = RunScores([])
    scores.plan = plan
    return scores


def _label(o: TaskOutcome, sweep: bool = False) -> str:
    """``Task``, ``Task/stage2``, or ``Task/stage2@top_k=20`` in a top_k sweep (one outcome per k)."""
    label = f"{o.task}/{o.stage}" if o.stage else o.task
    return f"{label}@top_k={o.top_k}" if sweep and o.top_k is not None else label


def interrupted(exc: KeyboardInterrupt, tasks: list[Any], outcomes: list[TaskOutcome],
                output_folder: Path) -> RunInterrupted:
    """Settle a run stopped by a signal: record what finished (failures.json, the reports) and name it.

    Every finished task's result file is already on disk (written atomically as it finished); the
    task that was running leaves nothing. The one line lists both, so the user knows what a rerun
    with ``overwrite_results: false`` will do. A task a search model cannot score (skipped) is neither.
    """
    from rag_eval.report import write_reports

    signal_name = getattr(exc, "signal_name", "SIGINT")
    settled = [o for o in outcomes if o.finished or o.status in SETTLED]
    line, finished, unfinished = _stop_summary(signal_name, tasks, outcomes)
    try:
        write_failures(settled, output_folder)
        if finished or any(o.status == Status.FAILED for o in outcomes):
            write_reports(output_folder)
    except ConfigError as error:  # the disk: the interrupt's line still comes first
        logger.error("%s", error)
    return RunInterrupted(line, finished, unfinished)


def _stop_summary(signal_name: str, tasks: list[Any], outcomes: list[TaskOutcome]) -> tuple[str, list, list]:
    """The line of a run stopped by ``signal_name``, its finished and its unfinished labels."""
    sweep = len({o.top_k for o in outcomes if o.top_k is not None}) > 1
    finished = [_label(o, sweep) for o in outcomes if o.finished]
    failed = [_label(o, sweep) for o in outcomes if o.status == Status.FAILED]
    skipped = [_label(o, sweep) for o in outcomes if o.status == Status.SKIPPED]
    started = {o.task for o in outcomes}
    unfinished = [_label(o, sweep) for o in outcomes if not o.finished and o.status not in SETTLED]
    unfinished += [t.metadata.name for t in tasks if t.metadata.name not in started]

    def names(labels: list[str]) -> str:
        return ", ".join(labels) if labels else "none"

    parts = [f"interrupted ({signal_name}): finished (on disk): {names(finished)}"]
    if failed:
        parts.append(f"failed: {names(failed)}")
    if skipped:
        parts.append(f"skipped (the model cannot score them): {names(skipped)}")
    parts.append(f"not finished: {names(unfinished)}")
    parts.append("rerun with eval.overwrite_results=false to resume")
    return "; ".join(parts), finished, unfinished


def _run_stages(run: RunConfig, tasks: list[Any], alone: bool, output_folder: Path, record: JobRecord,
                done: Callable[[TaskOutcome], None], outcomes: list[TaskOutcome]) -> list[TaskOutcome]:
    """Load the model(s), record the exact plan, run the stages: they append to ``outcomes`` as each task
    starts, and ``done`` gets each outcome once it is final."""
    from rag_eval.resolve.models import attach_task_prompts, load_bi_encoder, load_cross_encoder
    from rag_eval.stages.runner import run_stages, stages_of

    if alone:
        bi_encoder, cross_encoder = None, load_cross_encoder(run.cross_encoder)
    else:  # the reranker first: a folder it cannot score as its authors do is refused before stage 1 loads
        cross_encoder = load_cross_encoder(run.cross_encoder) if run.cross_encoder is not None else None
        bi_encoder = load_bi_encoder(run.bi_encoder)
        attach_task_prompts(bi_encoder, tasks)
    record.plan(plan(run, tasks, alone, bi=bi_encoder, ce=cross_encoder))
    stages = stages_of(run, alone, bi_encoder, cross_encoder)
    return run_stages(stages, tasks, run.eval, output_folder, outcomes, on_done=done)


def plan(run: RunConfig, tasks: list[Any], alone: bool, bi: Any = None, ce: Any = None) -> list[dict]:
    """The result files this run will write, one :func:`planned_task` per task and stage (and per
    top_k of a sweep); tasks the stage-1 model cannot score (BM25 on STS) are skipped, not planned.

    ``bi`` / ``ce`` are the loaded models; before they load, names come from the config and
    revisions (and stage 2's experiments, which name the stage-1 revision) are left blank.
    """
    from rag_eval.stages.runner import stages_of

    stages = stages_of(run, alone, bi, ce, planning=True)
    return [planned_task(slot.place.stage, slot.place.model, slot.place.revision, slot.place.experiment,
                         task.metadata.name, task.metadata.type)
            for task in tasks if not stages[0].skips(task)
            for stage in stages for slot in stage.places(task)]


def reranker_alone(tasks: list[Any]) -> bool:
    """Whether a two-model run is the reranker alone (no task retrieves: EvalScope's dispatch rule).

    Then every task must be one a cross-encoder can score on its own (candidate lists: Reranking);
    otherwise the run stops with one line before any model loads.
    """
    from rag_eval import task_types

    roles = {t.metadata.name: task_types.stage2_of(t.metadata.type) for t in tasks}
    if "top_k" in roles.values():
        return False
    other = [f"{t.metadata.name} ({t.metadata.type})" for t in tasks if roles[t.metadata.name] != "candidates"]
    if other:
        raise ConfigError(
            f"no Retrieval task, so the reranker runs alone (EvalScope's rule), and a cross-encoder cannot score "
            f"{', '.join(other)}: add a Retrieval task for two-stage, drop the reranker, or drop those tasks")
    return True


def where_line(outcomes: list[TaskOutcome], files: dict[str, Path]) -> str:
    """One line: where the run's result files, the summary and the charts are."""
    folders = list(dict.fromkeys(str(o.path.parent) for o in outcomes
                                 if o.path is not None and o.status != Status.SKIPPED))
    charts = [str(files[k]) for k in ("scores_chart", "speed_chart") if k in files]
    return (f"rag_eval: results in {', '.join(folders)}; summary {files['md']}"
            + (f"; charts {', '.join(charts)}" if charts else "")
            + (f"; open the report: {files['html']}" if "html" in files else ""))
