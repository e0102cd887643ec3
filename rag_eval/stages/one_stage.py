"""One-stage evaluation: one bi-encoder on every task, scored by mteb's own evaluators.

Each task is prepared, evaluated and written as soon as it finishes (see ``task_steps``); the
bi-encoder runs behind the embedding cache, so each unique text is encoded once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag_eval.config import EvalConfig
from rag_eval.resolve.models import LoadedModel
from rag_eval.results import ResultPlace, TaskOutcome, write_model_meta
from rag_eval.stages.first_stage import first_stage
from rag_eval.stages.reranking import cached_cross_encoder, note_scoring
from rag_eval.stages.task_steps import (
    cached_outcome,
    evaluate_task,
    new_outcome,
    note_vocabulary,
    prepare_task,
    record,
    result_extra,
    skip_unscorable,
)


def run_one_stage(model: LoadedModel, tasks: list[Any], ev: EvalConfig, output_folder: Path,
                  outcomes: list[TaskOutcome] | None = None,
                  on_done: Callable[[TaskOutcome], None] | None = None) -> list[TaskOutcome]:
    """``model`` on every task: a stage-1 model (a bi-encoder behind the embedding cache, BM25, a hybrid),
    or a cross-encoder alone on tasks with candidate lists (EvalScope's rule for a reranker with no
    Retrieval task). A search model (BM25, hybrid) skips the tasks it cannot score (it embeds nothing).

    Each task's outcome is appended to ``outcomes`` as it starts, so a caller interrupted mid-run
    (Ctrl-C) still knows what finished; the same list is returned. ``on_done`` gets each outcome as
    soon as it is final (the job's progress line and record); a skipped task is no part of the job's
    plan (see ``rag_eval.pipeline.plan``) and is not reported.
    """
    done = on_done or (lambda outcome: None)
    place = ResultPlace(model.name, model.revision, experiment=model.variant)
    if model.config.is_cross_encoder:
        encoder: Any = cached_cross_encoder(model, output_folder if ev.cache_scores else None, "one-stage")
        vocabulary, close = None, None
    else:
        stage1 = first_stage(model, output_folder if ev.cache_embeddings else None, "one-stage")
        encoder, vocabulary, close = stage1.run, stage1, stage1.close
    write_model_meta(place.model_folder(output_folder), encoder.mteb_model_meta)
    outcomes = [] if outcomes is None else outcomes
    try:
        for task in tasks:
            outcome = new_outcome(model, task, output_folder, place)
            outcomes.append(outcome)
            if skip_unscorable(outcome, model, task):
                continue
            if cached_outcome(outcome, ev):
                done(outcome)
                continue

            extra, items = result_extra(model, task, None), {}

            def evaluate(task=task, outcome=outcome, extra=extra, items=items):
                outcome.sample = prepare_task(task, ev, extra)
                result = evaluate_task(model, task, ev, encoder=encoder, items=items)
                note_vocabulary(extra, vocabulary, model, task)
                if model.config.is_cross_encoder:
                    note_scoring(extra, encoder, model, task)
                return result

            try:
                record(outcome, ev, evaluate, extra, items)
            finally:
                if task.data_loaded:
                    task.unload_data()
            done(outcome)
    finally:
        if close is not None:
            close()
    return outcomes
