"""Where a built-in mteb task's data comes from: the Hugging Face hub or ModelScope.

mteb loads a built-in task from ``task.metadata.dataset``: ``path`` (a hub repo id) and a
pinned ``revision``, handed to ``datasets.load_dataset`` either directly
(``AbsTask.load_data``: STS, classification, ...) or through ``RetrievalDatasetLoader``
(Retrieval and Reranking: the repo's configs ``corpus``, ``queries``, ``default`` or
``qrels``, and ``top_ranked`` holding a reranking task's candidate lists). Both take a local
folder as ``path`` just as well: ``datasets`` reads the folder's ``README.md`` ``configs:``
block (or infers splits from file names) exactly as it reads the hub repo, and ignores
``revision`` for a folder; ``dataset_transform`` then runs unchanged.

So this module only puts the repo on disk -- through :func:`rag_eval.resolve.hub.resolve_dataset`,
which reads the HF or ModelScope cache without touching the network when offline -- and runs
the task's own ``load_data`` with ``path`` pointing at that snapshot folder. The same files give
the same ``task.dataset`` whichever hub served them. ``path`` is swapped on the *instance* only
(``metadata`` is a class attribute shared by every instance of the task) and restored
afterwards, so results still name mteb's repo id and revision.

``mteb`` and ``datasets`` are imported inside the functions (importing mteb takes seconds).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag_eval import _compat
from rag_eval.errors import ConfigError, DataError, HubError
from rag_eval.resolve import hub as hub_mod

logger = logging.getLogger(__name__)

#: mteb's dataset orgs on the Hugging Face hub -> the ModelScope orgs mirroring them, tried in
#: this order (first one found wins). ModelScope mirrors C-MTEB's repos under the same ids
#: (``C-MTEB/LCQMC``) and mteb's own repos under ``mteb/<Name>`` (EvalScope >= 1.9, ModelScope's
#: evaluation tool, loads them by mteb's own path); older mirrors and downloads use the
#: capitalised ``MTEB/<Name>``, which a local cache may still hold. Any other org keeps its id.
MODELSCOPE_ORGS: dict[str, tuple[str, ...]] = {
    "mteb": ("mteb", "MTEB"),
    "C-MTEB": ("C-MTEB",),
}

#: whole-id exceptions, HF repo id -> ModelScope id, checked before :data:`MODELSCOPE_ORGS`.
#: Add an entry for a mirror kept under another name, or pass ``dataset_id=`` per call.
MODELSCOPE_DATASET_IDS: dict[str, str] = {}

# exception class names meaning a loader went to the network (offline: it cannot)
_NETWORK_ERRORS = {
    "ConnectionError",
    "OfflineModeIsEnabled",
    "LocalEntryNotFoundError",
    "DatasetNotFoundError",
    "HfHubHTTPError",
    "Timeout",
}
_MISSING = object()


@dataclass(frozen=True)
class TaskData:
    """Where a built-in task's data was found."""

    task: str  # the task's name
    repo_id: str  # mteb's dataset id (task.metadata.dataset["path"])
    dataset_id: str  # the id on the hub that served it (ModelScope ids may differ)
    hub: str  # "huggingface" | "modelscope" | "local"
    revision: str | None  # revision asked of the hub (None: the hub's default branch)
    path: Path  # local snapshot folder mteb's loader reads


def modelscope_dataset_ids(repo_id: str) -> list[str]:
    """The ModelScope ids that may mirror the HF dataset ``repo_id``, most likely first."""
    if repo_id in MODELSCOPE_DATASET_IDS:
        return [MODELSCOPE_DATASET_IDS[repo_id]]
    org, sep, name = repo_id.partition("/")
    if not sep or org not in MODELSCOPE_ORGS:
        return [repo_id]
    return [f"{ms_org}/{name}" for ms_org in MODELSCOPE_ORGS[org]]


def _is_aggregate(task: Any) -> bool:
    from mteb.abstasks.aggregated_task import AbsTaskAggregate

    return isinstance(task, AbsTaskAggregate)


def resolve_builtin_data(
    task: Any, hub: str, *, dataset_id: str | None = None, revision: str | None = None
) -> TaskData:
    """Put the task's dataset repo on disk from ``hub`` (offline: its cache only) -> :class:`TaskData`.

    ``dataset_id`` overrides the repo id on that hub (a mirror or fork); ``revision`` overrides
    the revision (default: mteb's pinned commit on Hugging Face -- a commit hash means nothing
    on ModelScope, whose default branch is used). Failures raise one :class:`HubError` line
    naming the task, the dataset id and the hub.
    """
    name = task.metadata.name
    repo_id = str(task.metadata.dataset.get("path") or "")
    pinned = task.metadata.dataset.get("revision")
    try:
        hub_name = hub_mod.normalize_hub(hub)
    except HubError as exc:
        raise HubError(f"task {name}: {exc}") from None
    if not repo_id:
        raise HubError(f"task {name}: its metadata names no dataset path: it cannot be loaded from {hub_name}")
    folder = Path(repo_id).expanduser()
    if dataset_id is None and folder.is_dir():  # a task declared from local data: no hub involved
        return TaskData(name, repo_id, repo_id, "local", None, folder.resolve())

    if dataset_id:
        candidates = [dataset_id]
    elif hub_name == hub_mod.HUGGINGFACE:
        candidates = [repo_id]
    else:
        candidates = modelscope_dataset_ids(repo_id)
    rev = revision
    if rev is None and hub_name == hub_mod.HUGGINGFACE and candidates == [repo_id]:
        rev = pinned  # mteb's pinned commit exists in mteb's repo only

    errors: list[HubError] = []
    for candidate in candidates:
        try:
            path = hub_mod.resolve_dataset(candidate, hub_name, rev)
        except HubError as exc:
            errors.append(exc)
            continue
        logger.info("%s: data %r from %s (%s)", name, candidate, hub_name, path)
        return TaskData(name, repo_id, candidate, hub_name, rev, path)

    first = str(errors[0])
    extra = []
    if candidates[0] != repo_id:
        extra.append(f"mteb's dataset is {repo_id!r}")
    if len(candidates) > 1:
        extra.append("also looked for " + ", ".join(repr(c) for c in candidates[1:]) + f" on {hub_name}")
    suffix = f" ({'; '.join(extra)})" if extra else ""
    raise HubError(f"task {name}: {first}{suffix}")


def load_builtin_data(task: Any, hub: str, *, dataset_id: str | None = None, revision: str | None = None) -> None:
    """Load a built-in mteb task's data from ``hub`` ("huggingface" or "modelscope").

    Afterwards ``task.data_loaded`` is True and ``task.dataset`` is what mteb's own
    ``task.load_data()`` gives (Reranking tasks keep their ``top_ranked`` candidate lists).
    Hub failures (offline and not cached, missing, no access) raise one :class:`HubError` line;
    a snapshot mteb cannot read raises one :class:`DataError` line. ``dataset_id`` /
    ``revision``: see :func:`resolve_builtin_data`. An aggregate task loads each of its tasks
    (from their own repos: the overrides do not apply to them).
    """
    if task.data_loaded:
        return
    if _is_aggregate(task):  # mteb evaluates (and loads) the tasks it aggregates one by one
        for sub in task.tasks:
            load_builtin_data(sub, hub)
        return
    source = resolve_builtin_data(task, hub, dataset_id=dataset_id, revision=revision)
    if source.hub != "local":
        _check_retrieval_layout(task, source)
    _load_from(task, source)


# --------------------------------------------------------------------------- loading


def _check_retrieval_layout(task: Any, source: TaskData) -> None:
    """Fail with one line when a retrieval snapshot lacks mteb's configs (e.g. a legacy mirror).

    mteb reads ``corpus``, ``queries`` and ``default`` or ``qrels``; a legacy C-MTEB copy (corpus
    and queries as *splits*, qrels in a separate ``-qrels`` repo) would otherwise fail deep in
    ``datasets`` with a message naming none of this.
    """
    if not _compat.uses_default_retrieval_loader(task):
        return
    from datasets import get_dataset_config_names

    try:
        configs = set(get_dataset_config_names(str(source.path)))
    except Exception as exc:  # noqa: BLE001 - unreadable snapshot: report it as such
        raise _load_error(task, source, exc) from exc
    missing = [c for c in ("corpus", "queries") if c not in configs]
    if not configs & {"default", "qrels"}:
        missing.append("default|qrels")
    if missing:
        raise DataError(
            f"task {task.metadata.name}: the {source.hub} copy of {source.dataset_id!r} at {source.path} is not in "
            f"mteb's retrieval layout (configs corpus, queries, default|qrels[, top_ranked]; found "
            f"{', '.join(sorted(configs)) or 'none'}; missing {', '.join(missing)}): use a mirror of mteb's "
            f"repo {source.repo_id!r} (pass its id as dataset_id) or load the data from hub huggingface"
        )


def _run_loader(task: Any, source: TaskData) -> None:
    """``task.load_data()``; any loader failure but bad input becomes one line."""
    try:
        task.load_data()
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - any loader failure becomes one line
        raise _load_error(task, source, exc) from exc


def _load_from(task: Any, source: TaskData) -> None:
    """Run the task's own ``load_data`` with its dataset path pointing at ``source.path``."""
    if source.hub == "local":
        _run_loader(task, source)
        return
    before = task.__dict__.get("metadata", _MISSING)
    original = task.metadata
    local_meta = original.model_copy(update={"dataset": {**original.dataset, "path": str(source.path)}})
    task.metadata = local_meta  # instance attribute: the class's metadata is shared
    try:
        _run_loader(task, source)
    finally:
        _restore_metadata(task, before, local_meta, original)


def _restore_metadata(task: Any, before: Any, local_meta: Any, original: Any) -> None:
    current = task.__dict__.get("metadata", _MISSING)
    if current is local_meta:
        if before is _MISSING:
            del task.__dict__["metadata"]
        else:
            task.metadata = before
    elif current is not _MISSING:  # load_data replaced the metadata itself: keep it, path restored
        task.metadata = current.model_copy(update={"dataset": dict(original.dataset)})


def _load_error(task: Any, source: TaskData, exc: BaseException) -> ConfigError:
    name = task.metadata.name
    detail = f"{type(exc).__name__}: {hub_mod.first_line(exc)}"
    if source.hub == "local":
        return DataError(f"task {name}: could not load its data from {source.path} ({detail}): fix the files there")
    cmd = hub_mod.download_command("dataset", source.dataset_id, source.hub, source.revision)
    if hub_mod.exc_names(exc) & _NETWORK_ERRORS:
        return HubError(
            f"task {name}: its loader needed more than the {source.hub} snapshot of {source.dataset_id!r} at "
            f"{source.path} and the hub cannot be reached ({detail}): run it once where there is network"
        )
    return DataError(
        f"task {name}: the {source.hub} copy of {source.dataset_id!r} at {source.path} could not be loaded "
        f"({detail}): clear that cache entry and download it again ({cmd})"
    )
