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
from rag_eval.errors import ConfigError, DataError, HubError, one_line
from rag_eval.resolve import hub as hub_mod

logger = logging.getLogger(__name__)

#: mteb's dataset orgs on the Hugging Face hub -> the ModelScope orgs mirroring them, tried in
#: this order (first one found wins; the one that served is recorded in each result). The repo
#: mteb pins comes first: ModelScope mirrors C-MTEB's repos under the same ids (``C-MTEB/LCQMC``)
#: and mteb's own under ``mteb/<Name>``. EvalScope >= 1.9's docs list the Chinese sets under
#: ``mteb/`` too (``mteb/LCQMC``, ``mteb/OCNLI``), so a ``C-MTEB/<Name>`` task tries
#: ``mteb/<Name>`` second; older mirrors and downloads use the capitalised ``MTEB/<Name>``, which a
#: local cache may still hold. Any other org keeps its id. (Which ids exist on ModelScope today
#: could not be checked from an offline machine: the order is documented in README.)
MODELSCOPE_ORGS: dict[str, tuple[str, ...]] = {
    "mteb": ("mteb", "MTEB"),
    "C-MTEB": ("C-MTEB", "mteb"),
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


@dataclass(frozen=True)
class TaskData:
    """Where a built-in task's data was found."""

    task: str  # the task's name
    repo_id: str  # mteb's dataset id (task.metadata.dataset["path"])
    dataset_id: str  # the id on the hub that served it (ModelScope ids may differ)
    hub: str  # "huggingface" | "modelscope" | "local"
    revision: str | None  # revision asked of the hub (None: the hub's default branch)
    path: Path  # local snapshot folder mteb's loader reads
    served_revision: str | None = None  # what served it: HF commit, ModelScope branch, local fingerprint
    pinned_revision: str | None = None  # mteb's pinned commit (task.metadata.dataset["revision"])

    def provenance(self) -> dict[str, Any]:
        """The result file's record of where the data came from (``rag_eval.data``)."""
        served = self.served_revision or self.revision
        return {"hub": self.hub, "repo_id": self.repo_id, "dataset_id": self.dataset_id,
                "revision": served, "revision_asked": self.revision, "mteb_revision": self.pinned_revision,
                "pinned": bool(self.pinned_revision) and served == self.pinned_revision}


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
        return TaskData(name, repo_id, repo_id, "local", None, folder.resolve(), pinned, pinned)

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
            path, served = hub_mod.dataset_snapshot(candidate, hub_name, rev)
        except HubError as exc:
            errors.append(exc)
            continue
        logger.info("%s: data %r from %s (%s, revision %s)", name, candidate, hub_name, path, served)
        return TaskData(name, repo_id, candidate, hub_name, rev, path, served, pinned)

    first = str(errors[0])
    extra = []
    if candidates[0] != repo_id:
        extra.append(f"mteb's dataset is {repo_id!r}")
    if len(candidates) > 1:
        extra.append("also looked for " + ", ".join(repr(c) for c in candidates[1:]) + f" on {hub_name}")
    suffix = f" ({'; '.join(extra)})" if extra else ""
    raise HubError(f"task {name}: {first}{suffix}")


def load_builtin_data(task: Any, hub: str, *, dataset_id: str | None = None,
                      revision: str | None = None) -> TaskData | None:
    """Load a built-in mteb task's data from ``hub`` ("huggingface" or "modelscope").

    Afterwards ``task.data_loaded`` is True and ``task.dataset`` is what mteb's own
    ``task.load_data()`` gives (Reranking tasks keep their ``top_ranked`` candidate lists).
    Hub failures (offline and not cached, missing, no access) raise one :class:`HubError` line;
    a snapshot mteb cannot read raises one :class:`DataError` line. ``dataset_id`` /
    ``revision``: see :func:`resolve_builtin_data`. An aggregate task loads each of its tasks
    (from their own repos: the overrides do not apply to them).

    Returns where the data came from (None when it was loaded already, or for an aggregate). The
    data is then in one shape whoever loaded it: see :func:`settle_shape`.
    """
    if task.data_loaded:
        return None
    if _is_aggregate(task):  # mteb evaluates (and loads) the tasks it aggregates one by one
        for sub in task.tasks:
            load_builtin_data(sub, hub)
        return None
    source = resolve_builtin_data(task, hub, dataset_id=dataset_id, revision=revision)
    if source.hub != "local":
        _check_retrieval_layout(task, source)
    _load_from(task, source)
    settle_shape(task, source)
    return source


def check_source(task: Any, hub: str) -> TaskData | None:
    """Find the task's data without loading it (the cache, or a download when online) and check a hub
    retrieval copy's configs: what can fail a task's loading, known before any model loads."""
    if task.data_loaded:
        return None
    if _is_aggregate(task):
        for sub in task.tasks:
            check_source(sub, hub)
        return None
    source = resolve_builtin_data(task, hub)
    if source.hub != "local":
        _check_retrieval_layout(task, source)
    return source


def settle_shape(task: Any, source: TaskData | None = None) -> None:
    """One shape for every loaded task: ``task.dataset[subset][split]``, subsets ``default`` for a
    monolingual task.

    mteb's ``AbsTask.load_data`` leaves a monolingual row task (STS, PairClassification,
    Classification, Clustering) keyed by split (``{"test": Dataset}``), its retrieval loader and
    rag_eval's local loader key by subset first; mteb's evaluators accept both, rag_eval's sampler
    and per-item capture read one. Checked here too: every eval split of every subset is present
    (one line naming the task, the split and what the data holds, before anything is encoded).
    """
    data = task.dataset
    if data is None:
        raise DataError(f"task {task.metadata.name}: its loader left no data: {_where(source)}")
    subsets = list(task.hf_subsets or ["default"])
    if not task.metadata.is_multilingual and "default" not in data and subsets == ["default"]:
        task.dataset = data = {"default": data}
    for subset in subsets:
        if subset not in data:
            raise DataError(f"task {task.metadata.name}: its data has no subset {subset!r} (found: "
                            f"{', '.join(map(str, data)) or 'none'}): {_where(source)}")
        missing = [s for s in task.eval_splits if s not in data[subset]]
        if missing:
            found = ", ".join(map(str, data[subset])) or "none"
            raise DataError(f"task {task.metadata.name}: its data has no split {', '.join(missing)}"
                            f"{'' if subset == 'default' else f' in subset {subset}'} (found: {found}): "
                            f"{_where(source)}")


def _where(source: TaskData | None) -> str:
    if source is None or source.hub == "local":
        where = f" at {source.path}" if source is not None else ""
        return f"fix the data files{where} or the task's eval splits"
    cmd = hub_mod.download_command("dataset", source.dataset_id, source.hub, source.revision)
    return (f"the {source.hub} copy of {source.dataset_id!r} at {source.path} is not the repo mteb expects: "
            f"download it again ({cmd})")


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
    with _compat.dataset_path_swapped(task, str(source.path)):  # this task object only, restored after
        _run_loader(task, source)


def _load_error(task: Any, source: TaskData, exc: BaseException) -> ConfigError:
    name = task.metadata.name
    detail = f"{type(exc).__name__}: {one_line(exc, 200)}"
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
