"""The steps every stage takes for each task: prepare, evaluate, record, or load the cached result.

* :func:`prepare_task` loads the task's data (``eval.hub`` or a local folder) and draws the sample;
* :func:`evaluate_task` is ``mteb.evaluate`` on the prepared task (mteb's evaluators score it);
* :func:`record` runs an evaluation, writes its result file (and its per-item data, see
  ``per_item``) as soon as it finishes, and records a failure (an exception, or no scores)
  instead of raising it, so the next task runs;
* :func:`cached_result` answers a task's finished result file (``overwrite_results: false``), or None;
  :func:`resume` makes it the outcome.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from rag_eval import _compat, task_types
from rag_eval.config import EvalConfig
from rag_eval.errors import ConfigError, one_line, redact
from rag_eval.resolve.models import LoadedModel
from rag_eval.resolve.sampling import sample_task, sample_task_evalscope
from rag_eval.results import (
    DISK_ERRNOS,
    ResultPlace,
    Status,
    TaskOutcome,
    load_task_result,
    main_score_of,
    per_item_path,
    split_scores,
    storage_error,
    write_per_item,
    write_task_result,
)
from rag_eval.stages import per_item

logger = logging.getLogger(__name__)


def prepare_task(task: Any, ev: EvalConfig, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load the task's data (``eval.hub`` or a local folder), draw the configured sample and check
    everything the evaluation will read, before any text is encoded.

    Returns the sample (sizes per split, see ``sample_task``); ``extra`` (the result's ``rag_eval``
    block) gets ``data``: the hub, repo and revision that served the data.
    """
    from rag_eval.resolve.task_data import load_builtin_data

    source = load_builtin_data(task, ev.hub)
    if source is not None and extra is not None:
        extra["data"] = source.provenance()
    if hasattr(task, "convert_v1_dataset_format_to_v2"):
        task.convert_v1_dataset_format_to_v2(num_proc=None)
    if ev.limits_mode == "evalscope":
        sample = sample_task_evalscope(task, ev.limits)
    else:
        sample = sample_task(task, ev.limits, ev.corpus_size, ev.seed)
    per_item.check_ready(task)
    return sample


def evaluate_task(model: LoadedModel, task: Any, ev: EvalConfig, encoder: Any = None,
                  prediction_folder: Path | None = None, items: dict[str, Any] | None = None) -> Any:
    """mteb's own evaluation of ``task`` (data already prepared) -> TaskResult.

    ``encoder`` replaces ``model.encoder`` (e.g. its embedding-cache wrapper);
    ``prediction_folder`` keeps the ranked results (stage 1 of a two-stage run);
    ``items`` receives the per-item data (per query or pair) of the evaluation, when its type keeps any.
    """
    import mteb

    _compat.reseed(task)
    encode_kwargs = {"batch_size": 32, **model.config.encode_kwargs}
    # rag_eval's own bars (stages/progress.py) name the task and stage; null = on a terminal only
    encode_kwargs.setdefault("show_progress_bar", None if ev.verbosity >= 2 else False)
    keep = nullcontext(None) if prediction_folder is None else private_predictions(
        Path(prediction_folder), task.prediction_file_name)
    # per-item data read before the move; bm25s' and HybridSearch's bars follow eval.verbosity too
    with keep as folder, per_item.capture(task, folder) as kept, _compat.quiet_bars(ev.verbosity < 2):
        result = mteb.evaluate(
            _chunked_search(encoder if encoder is not None else model.encoder, task, ev.corpus_chunk_size),
            task,
            prediction_folder=kept.prediction_folder,
            cache=None,
            overwrite_strategy="always",
            raise_error=True,
            encode_kwargs=encode_kwargs,
            show_progress_bar=False,
            co2_tracker=False,
        )
    if items is not None:
        items.clear()
        items.update(kept.payload() or {})
    return result.task_results[0]


def _chunked_search(run: Any, task: Any, chunk_size: int | None) -> Any:
    """``run`` as mteb's search over ``chunk_size`` documents a step (``eval.corpus_chunk_size``), for a
    retrieval task on an encoder; anything else (a search model, a cross-encoder, another task type,
    null) as it is."""
    if chunk_size is None:
        return run
    from mteb.abstasks import AbsTaskRetrieval
    from mteb.models import SearchEncoderWrapper
    from mteb.models.models_protocols import EncoderProtocol, SearchProtocol

    # the test mteb's retrieval evaluator makes before it wraps an encoder itself (a cross-encoder is not one)
    searches_itself = isinstance(run, SearchProtocol) or not isinstance(run, EncoderProtocol)
    if not isinstance(task, AbsTaskRetrieval) or searches_itself:
        return run
    return SearchEncoderWrapper(run, corpus_chunk_size=chunk_size)


@contextmanager
def private_predictions(folder: Path, name: str) -> Iterator[Path]:
    """A private folder for mteb's ``<Task>_predictions.json``, moved into ``folder`` atomically at the end.

    mteb reads, merges and rewrites that file with a plain ``open("w")``, so a job sharing the
    output folder (a sweep, two runs of one model) could read half of it. Here mteb merges into a
    copy; the finished file then replaces the shared one in one rename.
    """
    folder.mkdir(parents=True, exist_ok=True)
    private = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder))
    try:
        if (folder / name).is_file():
            shutil.copyfile(folder / name, private / name)
        yield private
        if (private / name).is_file():
            os.replace(private / name, folder / name)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def result_extra(model: LoadedModel, task: Any, stage: str | None, **more: Any) -> dict[str, Any]:
    """The ``rag_eval`` block of a result file (the sample is added when it is known): the model's part from its
    fingerprint (resolve/fingerprint.py), then the task's and what the model applied to it."""
    fp = model.fingerprint
    retrieves = not model.config.is_cross_encoder
    return {
        **fp.identity_record(),
        "stage": stage,
        "task_type": task.metadata.type,
        "dataset_path": task.metadata.dataset.get("path"),
        **fp.settings_record(),
        **({"prompts_applied": applied_prompts(model, task)} if retrieves else {}),
        **fp.api_record(),
        "applied": applied_settings(model, task),
        "versions": library_versions(),
        **more,
    }


#: the libraries whose versions a result records (they decide its numbers)
VERSIONED = ("rag_eval", "mteb", "sentence-transformers", "transformers", "torch", "datasets", "huggingface_hub",
             "modelscope")


@functools.cache
def library_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def applied_settings(model: LoadedModel, task: Any) -> dict[str, Any]:
    """What the model actually ran with on this task, read from the loaded model (not the config):
    its dtype and token limit, and the prompt text each input kind of this task got."""
    from mteb.types import PromptType

    inner = getattr(model.encoder, "model", None)  # the SentenceTransformer / CrossEncoder
    out: dict[str, Any] = {"max_seq_length": getattr(inner, "max_seq_length", None) or getattr(inner, "max_length",
                                                                                                  None)}
    try:
        out["dtype"] = str(next(inner.parameters()).dtype).removeprefix("torch.")
    except (AttributeError, StopIteration, TypeError):
        out["dtype"] = None
    if model.config.is_cross_encoder:
        out["query_prefix"] = getattr(model.encoder, "query_prefix", None) or model.config.prompt or ""
        return out
    prompts = getattr(model.encoder, "model_prompts", None) or {}
    kinds = ([PromptType.query, PromptType.document] if task_types.stage2_of(task.metadata.type) else [None])
    applied = {}
    for kind in kinds:
        key = _compat.prompt_name(prompts, task.metadata, kind) if prompts else None
        applied[getattr(kind, "value", "text")] = prompts.get(key, "") if key else ""
    out["prompts"] = applied
    return out


def applied_prompts(model: LoadedModel, task: Any) -> dict[str, str | None]:
    """The prompt texts the bi-encoder applies on this task, as mteb picks them (query / document)."""
    from mteb.types import PromptType

    prompts = getattr(model.encoder, "model_prompts", None) or {}
    out: dict[str, str | None] = {}
    for kind in (PromptType.query, PromptType.document):
        key = _compat.prompt_name(prompts, task.metadata, kind) if prompts else None
        out[kind.value] = prompts.get(key) if key else None
    return out


#: above this share of unknown tokens, a model's scores on a task say little (logged, and noted in summary.md)
UNK_WARN_RATE = 0.05


def note_vocabulary(extra: dict[str, Any], encoder: Any, model: LoadedModel, task: Any) -> None:
    """Put the share of the task's tokens the model's vocabulary does not know into ``extra``."""
    stats = encoder.vocabulary_stats(task.metadata.name) if encoder is not None else None
    if stats is None:
        return
    extra["vocabulary"] = stats
    if stats["unk_rate"] >= UNK_WARN_RATE:
        logger.warning("%s: %s reads %.0f%% of the tokens as unknown ([UNK]): its vocabulary does not cover "
                       "these texts", task.metadata.name, model.name, 100 * stats["unk_rate"])


def unscorable(cfg: Any, task_type: str) -> bool:
    """Whether a model (its ModelConfig) cannot score a task type: a search model (BM25, hybrid) only retrieves."""

    spec = task_types.get(task_type)
    return bool(cfg.is_search) and not (spec is not None and spec.retrieves)


def skip_unscorable(outcome: TaskOutcome, model: LoadedModel, task: Any) -> bool:
    """A search model (BM25, hybrid) only retrieves: mark other task types skipped (not failed)."""
    if not unscorable(model.config, task.metadata.type):
        return False
    outcome.status = Status.SKIPPED
    outcome.error = f"{model.config.model_type} retrieves and embeds nothing: it scores Retrieval/Reranking tasks only"
    logger.info("%s: skipped for %s (%s)", outcome.task, model.name, outcome.error)
    return True


def new_outcome(model: LoadedModel, task: Any, root: Path, place: ResultPlace, top_k: int | None = None) -> TaskOutcome:
    """A task's outcome, filed at ``place`` under ``root`` (status ok until something happens)."""
    name = task.metadata.name
    return TaskOutcome(task=name, task_type=task.metadata.type, model=model.name, stage=place.stage or None,
                       path=place.task_path(root, name), place=place, main_metric=task.metadata.main_score,
                       top_k=top_k)


def cached_result(outcome: TaskOutcome, ev: EvalConfig) -> tuple[Any, dict[str, Any]] | None:
    """With ``overwrite_results: false``, the finished result of ``outcome`` (TaskResult and its ``rag_eval``
    block), or None: it runs (mteb's ``_check_cache``)."""
    if ev.overwrite_results or outcome.path is None:
        return None
    return load_task_result(outcome.path)


def resume(outcome: TaskOutcome, cached: tuple[Any, dict[str, Any]]) -> None:
    """``outcome`` is its finished result file, ``cached`` (see :func:`cached_result`): nothing runs."""
    result, extra = cached
    outcome.status, outcome.scores = Status.CACHED, split_scores(result)
    outcome.main_score = main_score_of(outcome.scores)
    outcome.sample, outcome.seconds = extra.get("sample", {}), result.evaluation_time or 0.0
    outcome.finished = True
    logger.info("%s: result exists at %s, skipped (overwrite_results: false)", outcome.task, outcome.path)


def record(outcome: TaskOutcome, ev: EvalConfig, evaluate: Callable[[], Any], extra: dict[str, Any],
           items: dict[str, Any] | None = None) -> Any:
    """Run ``evaluate`` (-> TaskResult), then score and write it; a failure is recorded, not raised.

    ``items``, filled by ``evaluate`` (see :func:`evaluate_task`), is written beside the result file
    (``per_item/``). Returns the TaskResult, or None when the task failed. A bad input
    (:class:`ConfigError`) and a disk that cannot be written (full, read-only: :class:`StorageError`)
    stop the run instead.
    """
    start = time.monotonic()
    try:
        result = evaluate()
        outcome.scores = split_scores(result)
        outcome.main_score = main_score_of(outcome.scores)
        if outcome.main_score is None:
            raise RuntimeError("mteb returned no scores")
        outcome.seconds = time.monotonic() - start
        write_task_result(outcome.path, result, {**extra, "sample": outcome.sample})
        outcome.finished = True
        if items:
            write_per_item(outcome.path, items)
        else:  # no stale per-item data of an earlier run beside a new result
            per_item_path(outcome.path).unlink(missing_ok=True)
        return result
    except ConfigError:
        raise  # bad input: stop with its one-line message; finished tasks are on disk
    except Exception as exc:
        where = getattr(exc, "filename", None) or (outcome.path.parent if outcome.path else "the output folder")
        full = storage_error(exc, where, DISK_ERRNOS)
        if full is not None:  # a library's own write (mteb's predictions) hit a full or read-only disk
            raise full from None
        if ev.raise_error:
            raise
        outcome.status, outcome.seconds = Status.FAILED, time.monotonic() - start
        outcome.error = redact(f"{type(exc).__name__}: {one_line(str(exc))}")[:500]
        stage = f" ({outcome.stage})" if outcome.stage else ""
        logger.error("task %s%s %s: %s", outcome.task, stage, Status.FAILED, outcome.error)
        logger.debug("traceback of %s:\n%s", outcome.task, traceback.format_exc())
        return None
