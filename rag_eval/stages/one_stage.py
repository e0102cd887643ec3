"""One-stage evaluation: one bi-encoder on every task, scored by mteb's own evaluators.

Each task is loaded, sampled (``limits`` / ``corpus_size``), evaluated with
``mteb.evaluate`` and written as soon as it finishes; a task that raises, or returns no
scores, is recorded as failed and the next task runs.
"""

from __future__ import annotations

import logging
import time
import traceback
from pathlib import Path
from typing import Any

from rag_eval.config import EvalConfig
from rag_eval.errors import ConfigError
from rag_eval.resolve.models import LoadedModel
from rag_eval.resolve.sampling import sample_task
from rag_eval.results import (
    TaskOutcome,
    load_task_result,
    main_score_of,
    result_path,
    split_scores,
    write_model_meta,
    write_task_result,
)

logger = logging.getLogger(__name__)


def reseed(task: Any) -> None:
    """Reset the task's RNGs so its score does not depend on what ran before on it."""
    from mteb._set_seed import _set_seed

    task.rng_state, task.np_rng = _set_seed(task.seed)


def prepare_task(task: Any, ev: EvalConfig) -> dict[str, Any]:
    """Load the task's data (hub or local) and draw the configured sample."""
    if not task.data_loaded:
        task.load_data()
    if hasattr(task, "convert_v1_dataset_format_to_v2"):
        task.convert_v1_dataset_format_to_v2(num_proc=None)
    return sample_task(task, ev.limits, ev.corpus_size, ev.seed)


def evaluate_task(model: LoadedModel, task: Any, ev: EvalConfig) -> Any:
    """mteb's own evaluation of ``task`` (data already prepared) -> TaskResult."""
    import mteb

    reseed(task)
    encode_kwargs = {"batch_size": 32, **model.config.encode_kwargs}
    if ev.verbosity < 2:
        encode_kwargs.setdefault("show_progress_bar", False)
    result = mteb.evaluate(
        model.encoder,
        task,
        cache=None,
        overwrite_strategy="always",
        raise_error=True,
        encode_kwargs=encode_kwargs,
        show_progress_bar=ev.verbosity >= 2,
        co2_tracker=False,
    )
    return result.task_results[0]


def result_extra(model: LoadedModel, task: Any, sample: dict[str, Any], stage: str | None) -> dict[str, Any]:
    cfg = model.config
    return {
        "model": model.name,
        "model_name_or_path": cfg.model_name_or_path,
        "model_source": model.resolved.source,
        "revision": model.revision,
        "stage": stage,
        "task_type": task.metadata.type,
        "dataset_path": task.metadata.dataset.get("path"),
        "sample": sample,
        "model_config": {
            "pooling_mode": cfg.pooling_mode,
            "max_seq_length": cfg.max_seq_length,
            "prompt": cfg.prompt,
            "prompts": cfg.prompts,
            "model_kwargs": {k: str(v) for k, v in cfg.model_kwargs.items()},
            "encode_kwargs": cfg.encode_kwargs,
        },
    }


def run_one_stage(
    model: LoadedModel,
    tasks: list[Any],
    ev: EvalConfig,
    output_folder: Path,
    stage: str | None = None,
) -> list[TaskOutcome]:
    outcomes = []
    write_model_meta(result_path(output_folder, model.name, model.revision, "x", stage).parent,
                     model.encoder.mteb_model_meta)
    for task in tasks:
        name = task.metadata.name
        path = result_path(output_folder, model.name, model.revision, name, stage)
        outcome = TaskOutcome(task=name, task_type=task.metadata.type, model=model.name, stage=stage, path=path)
        outcome.main_metric = task.metadata.main_score
        if not ev.overwrite_results:
            done = load_task_result(path)
            if done is not None:
                result, extra = done
                outcome.status, outcome.scores = "cached", split_scores(result)
                outcome.main_score = main_score_of(outcome.scores)
                outcome.sample, outcome.seconds = extra.get("sample", {}), result.evaluation_time or 0.0
                logger.info("%s: result exists at %s, skipped (overwrite_results: false)", name, path)
                outcomes.append(outcome)
                continue
        start = time.monotonic()
        try:
            outcome.sample = prepare_task(task, ev)
            result = evaluate_task(model, task, ev)
            outcome.scores = split_scores(result)
            outcome.main_score = main_score_of(outcome.scores)
            if outcome.main_score is None:
                raise RuntimeError("mteb returned no scores")
            outcome.seconds = time.monotonic() - start
            write_task_result(path, result, result_extra(model, task, outcome.sample, stage))
        except ConfigError:
            raise  # bad input: stop with its one-line message; finished tasks are on disk
        except Exception as exc:
            if ev.raise_error:
                raise
            outcome.status, outcome.seconds = "failed", time.monotonic() - start
            outcome.error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500]
            logger.error("task %s FAILED: %s", name, outcome.error)
            logger.debug("traceback of %s:\n%s", name, traceback.format_exc())
        finally:
            if task.data_loaded:
                task.unload_data()
        outcomes.append(outcome)
    return outcomes
