"""The one loop every run takes: for each task, its outcomes in every stage, in one order.

new outcome -> skip a task the first stage cannot score -> resume what is finished -> prepare the
task (data, sample; once, on first use) -> evaluate and write each stage -> unload the task.

The stages (:mod:`rag_eval.stages.stage`) come from :func:`stages_of`: the encoder stage alone
(one-stage), the cross-encoder alone, or the encoder stage then the rerank stage (two-stage, one
result per top_k). A later stage needs the first one: when it fails, they fail with it
(``stage 1 failed``). ``pipeline.plan`` reads the same stages, so a job's plan is what runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag_eval.config import EvalConfig, RunConfig
from rag_eval.results import ResultPlace, Status, TaskOutcome
from rag_eval.stages.encoder_stage import EncoderStage
from rag_eval.stages.rerank_stage import CrossEncoderStage, RerankStage, result_places
from rag_eval.stages.stage import STAGE1, Stage
from rag_eval.stages.task_steps import (
    cached_result,
    new_outcome,
    prepare_task,
    record,
    resume,
    skip_unscorable,
)

logger = logging.getLogger(__name__)

Done = Callable[[TaskOutcome], None]


# --------------------------------------------------------------------------- which stages a run has


def _name_rev(model: Any, cfg: Any) -> tuple[str, str]:
    from rag_eval.resolve.models import expected_name

    return (model.name, model.revision) if model is not None else (expected_name(cfg), "")


def one_stage(cfg: Any, model: Any = None) -> list[Stage]:
    """The stage-1 model alone (one-stage)."""
    from rag_eval.resolve.fingerprint import experiment_name

    name, revision = _name_rev(model, cfg)
    return [EncoderStage(cfg, model, ResultPlace(name, revision, experiment=experiment_name(cfg)), "one-stage")]


def cross_encoder_alone(cfg: Any, model: Any = None) -> list[Stage]:
    """The cross-encoder alone (no Retrieval task: EvalScope's rule)."""
    from rag_eval.resolve.fingerprint import experiment_name

    name, revision = _name_rev(model, cfg)
    return [CrossEncoderStage(cfg, model, ResultPlace(name, revision, experiment=experiment_name(cfg)))]


def two_stages(bi_cfg: Any, ce_cfg: Any, top_ks: list[int], bi: Any = None, ce: Any = None,
               planning: bool = False) -> list[Stage]:
    """The encoder stage, then the rerank stage over its top_k (one experiment per top_k). ``planning``:
    a job's plan, where stage 2's experiments stay blank until stage 1's revision is known."""
    from rag_eval.resolve.fingerprint import experiment_name

    (bi_name, bi_rev), (ce_name, ce_rev) = _name_rev(bi, bi_cfg), _name_rev(ce, ce_cfg)
    first, seconds = result_places(bi_name, bi_rev, experiment_name(bi_cfg), ce_name, ce_rev,
                                   experiment_name(ce_cfg), top_ks)
    if planning and not bi_rev:  # the experiments are not known yet (a blank one matches any)
        seconds = {k: ResultPlace(ce_name, ce_rev, p.stage) for k, p in seconds.items()}
    stage1_of = {"stage1_model": bi_name, "stage1_revision": bi_rev, "stage1_variant": experiment_name(bi_cfg)}
    return [EncoderStage(bi_cfg, bi, first, STAGE1, keep_predictions=True),
            RerankStage(ce_cfg, ce, seconds, first, stage1_of)]


def stages_of(run: RunConfig, alone: bool, bi: Any = None, ce: Any = None, planning: bool = False) -> list[Stage]:
    """The stages of ``run`` (``alone``: the reranker alone); ``bi`` / ``ce`` the loaded models, or None
    before they load (names from the config, revisions blank)."""
    if alone:
        return cross_encoder_alone(run.cross_encoder, ce)
    if run.cross_encoder is None:
        return one_stage(run.bi_encoder, bi)
    return two_stages(run.bi_encoder, run.cross_encoder, run.eval.top_ks, bi, ce, planning=planning)


def run_two_stage(bi: Any, ce: Any, tasks: list[Any], ev: EvalConfig, output_folder: Path,
                  outcomes: list[TaskOutcome] | None = None, on_done: Done | None = None) -> list[TaskOutcome]:
    """The loaded stage-1 model ``bi``, then the cross-encoder ``ce`` over its top_k, on every task."""
    return run_stages(two_stages(bi.config, ce.config, ev.top_ks, bi, ce), tasks, ev, output_folder, outcomes,
                      on_done)


# --------------------------------------------------------------------------- the loop


def run_stages(stages: list[Stage], tasks: list[Any], ev: EvalConfig, output_folder: Path,
               outcomes: list[TaskOutcome] | None = None, on_done: Done | None = None) -> list[TaskOutcome]:
    """Every stage on every task.

    Each outcome is appended to ``outcomes`` as its task starts, so a caller interrupted mid-run
    (Ctrl-C) still knows what finished; the same list is returned. ``on_done`` gets each outcome as
    soon as it is final (the first stage's before the later ones run); a skipped task is no part of
    the job's plan (see ``rag_eval.pipeline.plan``) and is not reported.
    """
    done = on_done or (lambda outcome: None)
    outcomes = [] if outcomes is None else outcomes
    opened: list[Stage] = []
    try:
        for stage in stages:
            stage.open(ev, output_folder)
            opened.append(stage)
        for task in tasks:
            _run_task(stages, task, ev, output_folder, outcomes, done)
    finally:
        for stage in opened:
            stage.close()
    return outcomes


def _run_task(stages: list[Stage], task: Any, ev: EvalConfig, output_folder: Path, outcomes: list[TaskOutcome],
              done: Done) -> None:
    lead, *later = stages
    (slot,) = lead.places(task)
    first = new_outcome(lead.model, task, output_folder, slot.place, slot.top_k)
    outcomes.append(first)
    if skip_unscorable(first, lead.model, task):
        return
    rest = [(stage, new_outcome(stage.model, task, output_folder, s.place, s.top_k))
            for stage in later for s in stage.places(task)]
    outcomes.extend(o for _, o in rest)
    first_done = _resumed(first, ev, lambda: lead.resumable(task))
    todo = [(stage, o) for stage, o in rest if not _resumed(o, ev, lambda stage=stage: stage.resumable(task))]
    if first_done and not todo:
        for outcome in (first, *(o for _, o in rest)):
            done(outcome)
        return
    source: dict[str, Any] = {}  # where the data came from, in every stage's result
    sample: dict[str, Any] | None = None

    def prepared() -> dict[str, Any]:  # the data and sample, once for all stages
        nonlocal sample
        if sample is None:
            sample = prepare_task(task, ev, source)
            first.sample = sample
        return sample

    try:
        if not first_done:
            _evaluate(lead, task, ev, first, prepared, source)
        done(first)  # final now (its file written): counted even if a later stage then stops
        for stage, outcome in todo:  # stage 2: largest top_k first, it scores every pair the smaller ones need
            if first.status == Status.FAILED:
                outcome.status, outcome.error = Status.FAILED, "stage 1 failed"
                continue
            _evaluate(stage, task, ev, outcome, prepared, source)
    finally:
        if task.data_loaded:
            task.unload_data()
    for _, outcome in rest:
        done(outcome)


def _resumed(outcome: TaskOutcome, ev: EvalConfig, resumable: Callable[[], bool]) -> bool:
    cached = cached_result(outcome, ev)
    if cached is None or not resumable():
        return False
    resume(outcome, cached)
    return True


def _evaluate(stage: Stage, task: Any, ev: EvalConfig, outcome: TaskOutcome,
              prepared: Callable[[], dict[str, Any]], source: dict[str, Any]) -> None:
    """Prepare the task (first use), run ``stage`` on it and write its result; a failure is recorded."""
    extra: dict[str, Any] = {}  # the result's rag_eval block, filled once the data's source is known
    items: dict[str, Any] = {}

    def evaluate() -> Any:
        outcome.sample = prepared()
        extra.update(stage.extra(task, source, outcome))
        return stage.evaluate(task, ev, outcome, extra, items)

    record(outcome, ev, evaluate, extra, items)
