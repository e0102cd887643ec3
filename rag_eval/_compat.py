"""The fence around library internals: every private mteb / sentence-transformers / HF name here.

rag_eval leans on a few names that its libraries do not promise to keep: mteb's seeding helper
and score rounding, its cross-encoder wrapper's input iterator, sentence-transformers' batch
ordering helpers, mteb's default loaders (compared by identity), a task's instance ``__dict__``
(its class-level ``metadata`` swapped per object) and the HF libraries' offline flags. Outside this
module no other rag_eval module touches them.

:func:`check` runs once at the start of a run. If a release renamed one of them, the run stops
with ONE line naming the library, its version and the range rag_eval is tested with. Otherwise it
would silently lose speed or bit-identity with mteb, or every task would be marked FAILED.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from typing import Any

from rag_eval.errors import ConfigError

#: the ranges the code below is written and tested against (pyproject.toml pins the same)
SUPPORTED = {
    "mteb": ">=2.26,<3",
    "sentence-transformers": ">=6.2,<7",
}


class LibraryMismatch(ConfigError):
    """An installed library lacks an internal name rag_eval relies on (exit 2, one line)."""


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _mismatch(dist: str, what: str) -> LibraryMismatch:
    return LibraryMismatch(
        f"{dist} {_version(dist)} lacks {what}, which rag_eval uses: install the tested range "
        f"(pip install '{dist}{SUPPORTED[dist]}')"
    )


def _probes() -> list[tuple[str, str, Callable[[], Any]]]:
    """(distribution, name, getter) for every internal name rag_eval uses."""

    def mteb_set_seed():
        from mteb._set_seed import _set_seed

        return _set_seed

    def round_scores():
        from mteb import TaskResult

        return TaskResult._round_scores

    def iter_inputs():
        from mteb.models.sentence_transformer_wrapper import CrossEncoderWrapper

        return CrossEncoderWrapper._iter_inputs

    def default_loaders():
        from mteb.abstasks.retrieval import AbsTaskRetrieval
        from mteb.abstasks.text.reranking import OLD_FORMAT_RERANKING_TASKS, AbsTaskReranking

        return AbsTaskRetrieval.load_data, AbsTaskReranking.load_data, OLD_FORMAT_RERANKING_TASKS

    def prompt_name():
        from mteb.models.abs_encoder import get_prompt_name

        return get_prompt_name

    def st_batching():
        from sentence_transformers import SentenceTransformer

        return (SentenceTransformer._input_length, SentenceTransformer._can_flatten_inputs,
                SentenceTransformer._interleave_sorted_indices)

    return [
        ("mteb", "mteb._set_seed._set_seed", mteb_set_seed),
        ("mteb", "TaskResult._round_scores", round_scores),
        ("mteb", "CrossEncoderWrapper._iter_inputs", iter_inputs),
        ("mteb", "AbsTaskRetrieval/AbsTaskReranking.load_data and OLD_FORMAT_RERANKING_TASKS", default_loaders),
        ("mteb", "mteb.models.abs_encoder.get_prompt_name", prompt_name),
        ("sentence-transformers", "SentenceTransformer._input_length / _can_flatten_inputs / "
                                  "_interleave_sorted_indices", st_batching),
    ]


_checked = False


def check() -> None:
    """Fail with one line if an installed library lost a name rag_eval relies on (cached)."""
    global _checked
    if _checked:
        return
    for dist, name, get in _probes():
        try:
            get()
        except (ImportError, AttributeError):
            raise _mismatch(dist, name) from None
    _checked = True


# --------------------------------------------------------------------------- mteb


def reseed(task: Any) -> None:
    """Reset the task's RNGs as mteb does when it builds a task, so a score never depends on
    what ran before on the same task object."""
    from mteb._set_seed import _set_seed

    task.rng_state, task.np_rng = _set_seed(task.seed)


def round_scores(task_result: Any, scores: dict[str, Any], digits: int = 6) -> None:
    """Round a result file's scores in place, as ``TaskResult.to_disk`` does."""
    task_result._round_scores(scores, digits)


def cross_encoder_texts(wrapper: Any, inputs1: Any, inputs2: Any) -> tuple[list[Any], list[Any]] | None:
    """The (query, document) texts mteb's ``CrossEncoderWrapper`` would score, prefixes applied.

    None when ``wrapper`` is another cross-encoder (then it must be called as it is).
    """
    if not (callable(getattr(getattr(wrapper, "model", None), "predict", None)) and hasattr(wrapper, "_iter_inputs")):
        return None
    queries = [q for batch in wrapper._iter_inputs(inputs1, wrapper.query_prefix) for q in batch]
    docs = [d for batch in wrapper._iter_inputs(inputs2, wrapper.passage_prefix) for d in batch]
    return queries, docs


def uses_default_retrieval_loader(task: Any) -> bool:
    """A monolingual task that mteb loads with its own RetrievalDatasetLoader from the repo's configs."""
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.text.reranking import OLD_FORMAT_RERANKING_TASKS, AbsTaskReranking

    if not isinstance(task, AbsTaskRetrieval) or task.metadata.is_multilingual:
        return False
    load = type(task).load_data
    if load is AbsTaskReranking.load_data:
        return task.metadata.name not in OLD_FORMAT_RERANKING_TASKS
    return load is AbsTaskRetrieval.load_data


_UNSET = object()


@contextmanager
def dataset_path_swapped(task: Any, path: str) -> Iterator[None]:
    """Inside the block, ``task.metadata.dataset["path"]`` is ``path`` on this task object only: mteb's
    ``metadata`` is a class attribute shared by every instance, so a copy is set on the instance (its
    ``__dict__``) and taken away after, leaving the class's untouched. If the task's own ``load_data``
    replaced the metadata meanwhile, that one is kept, with the original dataset path put back."""
    before = task.__dict__.get("metadata", _UNSET)
    original = task.metadata
    local_meta = original.model_copy(update={"dataset": {**original.dataset, "path": path}})
    task.metadata = local_meta
    try:
        yield
    finally:
        current = task.__dict__.get("metadata", _UNSET)
        if current is local_meta:
            if before is _UNSET:
                del task.__dict__["metadata"]
            else:
                task.metadata = before
        elif current is not _UNSET:  # load_data replaced the metadata itself: keep it, path restored
            task.metadata = current.model_copy(update={"dataset": dict(original.dataset)})


def prompt_name(prompts: dict[str, str], task_metadata: Any, prompt_type: Any) -> str | None:
    """The key of ``prompts`` mteb picks for this task and prompt type (mteb's own precedence)."""
    from mteb.models.abs_encoder import get_prompt_name

    return get_prompt_name(prompts, task_metadata, prompt_type)


# --------------------------------------------------------------------------- sentence-transformers


def input_length(model: Any) -> Callable[[Any], int]:
    """sentence-transformers' own length measure for sorting inputs (``len`` for other models)."""
    return getattr(model, "_input_length", len)


def interleave_if_flattened(model: Any, order: Any) -> Any:
    """Longest-first ``order`` interleaved long/short when the model runs on unpadded inputs."""
    can_flatten = getattr(model, "_can_flatten_inputs", None)
    if callable(can_flatten) and can_flatten():
        return model._interleave_sorted_indices(order)
    return order


# --------------------------------------------------------------------------- huggingface_hub / datasets


def set_hf_offline_flags(hub: bool, datasets: bool) -> None:
    """Make already-imported huggingface_hub / datasets stay offline (they read the env at import)."""
    if hub:
        constants = sys.modules.get("huggingface_hub.constants")
        if constants is not None and hasattr(constants, "HF_HUB_OFFLINE"):
            constants.HF_HUB_OFFLINE = True
    dconfig = sys.modules.get("datasets.config")
    if dconfig is not None and datasets:
        for attr in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
            if hasattr(dconfig, attr):
                setattr(dconfig, attr, True)


#: modules that bind ``tqdm`` at import and pass ``disable=`` themselves (bm25s: ``not show_progress``, never
#: False from mteb; mteb's HybridSearch: no switch at all), so neither tqdm's defaults nor mteb's
#: ``show_progress_bar`` reach their bars
_BAR_MODULES = ("mteb.models.hybrid_wrappers", "bm25s", "bm25s.tokenization", "bm25s.scoring")


@contextmanager
def quiet_bars(quiet: bool) -> Iterator[None]:
    """Inside the block (when ``quiet``), the progress bars of :data:`_BAR_MODULES` are disabled (eval.verbosity
    below 2); the modules get their own ``tqdm`` back after it."""
    if not quiet:
        yield
        return
    import logging

    bm25s_logger = logging.getLogger("bm25s")  # bm25s sets DEBUG on import
    level = bm25s_logger.level
    bm25s_logger.setLevel(logging.WARNING)
    swapped = []
    for name in _BAR_MODULES:
        module = sys.modules.get(name)
        original = getattr(module, "tqdm", None)
        if original is None:
            continue

        def silent(*args: Any, _tqdm: Any = original, **kwargs: Any) -> Any:
            kwargs["disable"] = True
            return _tqdm(*args, **kwargs)

        module.tqdm = silent
        swapped.append((module, original))
    try:
        yield
    finally:
        for module, original in swapped:
            module.tqdm = original
        bm25s_logger.setLevel(level)
