"""``run_task``: the whole chain config -> resolve -> stages -> results, for plugins and the CLI."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from rag_eval.config import RunConfig, load_config
from rag_eval.errors import ConfigError, RunInterrupted
from rag_eval.results import TaskOutcome, check_writable, write_failures

logger = logging.getLogger("rag_eval")

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
        self.failed = {(f"{o.task}/{o.stage}" if o.stage else o.task): o.error
                       for o in outcomes if o.status == "failed"}
        self.skipped = {o.task: o.error for o in outcomes if o.status == "skipped"}
        sweeps = {o.task for o in outcomes if o.top_k is not None} if len(
            {o.top_k for o in outcomes if o.top_k is not None}) > 1 else set()
        for o in outcomes:
            if o.status in ("failed", "skipped"):
                continue
            if o.stage:  # two-stage: {task: {stage: {split: metrics}}}; a top_k sweep: "stage2@top<k>"
                key = f"{o.stage}@top{o.top_k}" if o.task in sweeps and o.top_k is not None else o.stage
                self.setdefault(o.task, {})[key] = o.scores
            else:
                self[o.task] = o.scores

    @property
    def ok(self) -> bool:
        return not self.failed


def _setup_logging(verbosity: int) -> None:
    level = _LEVELS.get(max(0, min(3, verbosity)), logging.INFO)
    logging.getLogger("rag_eval").setLevel(level)
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.WARNING)
    # mteb and sentence-transformers talk a lot at INFO: keep them at WARNING unless debugging
    for name in ("mteb", "sentence_transformers", "transformers", "datasets", "httpx"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbosity >= 3 else logging.WARNING)
    if verbosity < 2:  # library progress bars (weights, dataset maps) are noise in a summary run
        import datasets
        import transformers

        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()


def run_task(cfg: Any, *, base_dir: str | Path | None = None) -> RunScores:
    """Evaluate the configured model(s) on the configured tasks; write and return the scores.

    ``cfg`` is an EvalScope-style dict, a Hydra DictConfig, a YAML path or a RunConfig.
    Relative data paths are read against ``base_dir`` (default: the working directory).

    Bad input, and an output folder that cannot be written, raise :class:`ConfigError` (one line)
    before any model loads. A ``KeyboardInterrupt`` mid-run becomes :class:`RunInterrupted` (still a
    ``KeyboardInterrupt``) once the finished tasks are recorded; its line names them.
    """
    run: RunConfig = load_config(cfg)
    output_folder = check_writable(run.eval.output_folder)  # one line now, not after the first task
    _setup_logging(run.eval.verbosity)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from rag_eval import _compat
    from rag_eval.report import print_summary, write_reports
    from rag_eval.resolve.models import attach_task_prompts, load_bi_encoder, load_cross_encoder
    from rag_eval.resolve.tasks import resolve_tasks
    from rag_eval.stages.one_stage import run_one_stage
    from rag_eval.stages.two_stage import run_two_stage

    _compat.check()  # one line if a library lost an internal name rag_eval relies on
    base = Path(base_dir) if base_dir else None
    tasks = resolve_tasks(run.eval, base)
    outcomes: list[TaskOutcome] = []  # the stages append as they go: an interrupt still knows what finished
    try:
        if run.cross_encoder is not None and reranker_alone(tasks):
            # EvalScope's rule: a bi-encoder and a reranker but no Retrieval task -> the reranker alone
            run_one_stage(load_cross_encoder(run.cross_encoder), tasks, run.eval, output_folder, outcomes)
        else:
            bi_encoder = load_bi_encoder(run.bi_encoder)
            attach_task_prompts(bi_encoder, tasks)
            if run.cross_encoder is None:
                run_one_stage(bi_encoder, tasks, run.eval, output_folder, outcomes)
            else:
                cross_encoder = load_cross_encoder(run.cross_encoder)
                run_two_stage(bi_encoder, cross_encoder, tasks, run.eval, output_folder, outcomes)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM through the CLI's handler
        raise interrupted(exc, tasks, outcomes, output_folder) from None
    scores = RunScores(outcomes)
    write_failures(outcomes, output_folder)  # failed tasks have no result file: keep them visible
    files = write_reports(output_folder)  # the summary, averages and charts of everything in output_folder
    if run.eval.verbosity >= 1:
        print_summary(outcomes)
        print(where_line(outcomes, files))
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
    sweep = len({o.top_k for o in outcomes if o.top_k is not None}) > 1
    settled = [o for o in outcomes if o.finished or o.status in ("failed", "skipped")]
    finished = [_label(o, sweep) for o in outcomes if o.finished]
    failed = [_label(o, sweep) for o in outcomes if o.status == "failed"]
    skipped = [_label(o, sweep) for o in outcomes if o.status == "skipped"]
    started = {o.task for o in outcomes}
    unfinished = [_label(o, sweep) for o in outcomes if not o.finished and o.status not in ("failed", "skipped")]
    unfinished += [t.metadata.name for t in tasks if t.metadata.name not in started]
    try:
        write_failures(settled, output_folder)
        if finished or failed:
            write_reports(output_folder)
    except ConfigError as error:  # the disk: the interrupt's line still comes first
        logger.error("%s", error)

    def names(labels: list[str]) -> str:
        return ", ".join(labels) if labels else "none"

    parts = [f"interrupted ({signal_name}): finished (on disk): {names(finished)}"]
    if failed:
        parts.append(f"failed: {names(failed)}")
    if skipped:
        parts.append(f"skipped (the model cannot score them): {names(skipped)}")
    parts.append(f"not finished: {names(unfinished)}")
    parts.append("rerun with eval.overwrite_results=false to resume")
    return RunInterrupted("; ".join(parts), finished, unfinished)


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
    folders = list(dict.fromkeys(str(o.path.parent) for o in outcomes if o.path is not None and o.status != "skipped"))
    charts = [str(files[k]) for k in ("scores_chart", "speed_chart") if k in files]
    return (f"rag_eval: results in {', '.join(folders)}; summary {files['md']}"
            + (f"; charts {', '.join(charts)}" if charts else ""))
