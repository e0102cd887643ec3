"""Task names and local folders -> mteb task objects.

A task entry in ``eval.tasks`` is one of

* a built-in mteb task name (``T2Retrieval``, ``LCQMC``, ...);
* ``{name: <built-in>, path: <folder>}`` - the built-in task, its data read from a local copy;
* ``{name: <new name>, type: <TaskType>, path: <folder>}`` - a task declared from local data
  (the layouts of ``rag_eval.task_types``' families), with optional ``split``, ``main_score``, ``lang``;
* EvalScope's ``Custom<Type>`` (e.g. ``CustomRetrieval``) with ``eval.dataset_path``.

Local tasks are real mteb tasks (a ``TaskMetadata`` plus the abstract task of their type), so
mteb's own evaluator scores them exactly as it scores the built-in ones.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from pathlib import Path
from typing import Any

from rag_eval import task_types
from rag_eval.config import EvalConfig
from rag_eval.errors import ConfigError, check_keys, did_you_mean, one_line
from rag_eval.results import layout

logger = logging.getLogger(__name__)

TASK_ENTRY_KEYS = {"name", "type", "path", "split", "main_score", "lang", "description"}


def resolve_tasks(ev: EvalConfig, base_dir: Path | None = None) -> list[Any]:
    """Build one mteb task object per task of the run (data not loaded yet), in config order.

    The tasks are ``eval.benchmark``'s (mteb's own task objects, with the benchmark's splits), then
    one per entry of ``eval.tasks``. ``eval.task_types`` / ``eval.languages`` filter the built-in
    ones (mteb's ``filter_tasks``); with no benchmark and no named built-in task they select from
    mteb's whole registry (``mteb.get_tasks``), as EvalScope's filters do. Tasks declared from local
    data (with a ``type``) are always kept.
    """
    entries = [(entry, f"eval.tasks[{i}]") for i, entry in enumerate(ev.tasks)]
    declared = [_is_declared(entry, ev) for entry, _ in entries]
    builtin = _benchmark_tasks(ev.benchmark)
    builtin += [resolve_task(e, ev, where, base_dir) for (e, where), d in zip(entries, declared, strict=True) if not d]
    filters = bool(ev.task_types or ev.languages)
    if filters and not builtin:
        builtin = _registry_tasks(ev)
    elif filters:
        builtin = _filtered(builtin, ev)
    local = [resolve_task(e, ev, where, base_dir) for (e, where), d in zip(entries, declared, strict=True) if d]
    tasks, seen, files = [], set(), {}
    for task in builtin + local:
        name = task.metadata.name
        if name in seen:
            raise ConfigError(f"eval.tasks names '{name}' twice: list each task once")
        file = layout.task_file_name(name)
        if file in files:
            raise ConfigError(f"eval.tasks names '{files[file]}' and '{name}', which both map to the result file "
                              f"{file}: rename one")
        seen.add(name)
        files[file] = name
        tasks.append(task)
    if not tasks:
        raise ConfigError(f"eval.task_types {list(ev.task_types)} / eval.languages {list(ev.languages)} leave no "
                          f"task of the run: use types of the listed tasks ({', '.join(task_types.TYPE_ORDER)})")
    return tasks


def _is_declared(entry: Any, ev: EvalConfig) -> bool:
    """A task declared from local data (a ``type``, or EvalScope's ``Custom<Type>``)."""
    if isinstance(entry, str):
        return entry.startswith("Custom") and entry[6:] in task_types.TASK_TYPES
    return isinstance(entry, dict) and entry.get("type") is not None


def _filtered(tasks: list[Any], ev: EvalConfig) -> list[Any]:
    import mteb

    return list(mteb.filter_tasks(tasks, task_types=ev.task_types or None, languages=ev.languages or None))


def _registry_tasks(ev: EvalConfig) -> list[Any]:
    """mteb's tasks of these types / languages (its defaults: no superseded, private or beta tasks)."""
    import mteb

    try:
        return list(mteb.get_tasks(task_types=ev.task_types or None, languages=ev.languages or None))
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"eval.task_types / eval.languages: {one_line(exc)}") from None


def _benchmark_tasks(name: str | None) -> list[Any]:
    """The task objects of an mteb benchmark (they carry the benchmark's eval splits)."""
    if not name:
        return []
    import mteb

    try:
        return list(mteb.get_benchmark(name).tasks)
    except (KeyError, ValueError):
        names = sorted(b.name for b in mteb.get_benchmarks())
        hint = did_you_mean(name, names, n=3, cutoff=0.5)
        fix = f"did you mean {', '.join(hint)}?" if hint else "see mteb.get_benchmarks() for names"
        raise ConfigError(f"eval.benchmark: unknown mteb benchmark '{name}': {fix}") from None


def resolve_task(entry: Any, ev: EvalConfig, where: str, base_dir: Path | None = None) -> Any:
    if isinstance(entry, str):
        if entry.startswith("Custom") and entry[6:] in task_types.TASK_TYPES:
            if not ev.dataset_path:
                raise ConfigError(f"{where} is {entry} but eval.dataset_path is not set: point it at the data folder")
            entry = {"name": entry, "type": entry[6:], "path": ev.dataset_path}
        else:
            return _builtin(entry, where)
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be a task name or a mapping with name/type/path, got {entry!r}")
    check_keys(dict.fromkeys(sorted(set(entry) - TASK_ENTRY_KEYS)), TASK_ENTRY_KEYS, f"{where}.", what="key")
    name = entry.get("name")
    if not name or not isinstance(name, str):
        raise ConfigError(f"{where}.name is missing: every task entry needs a name")
    path = entry.get("path")
    folder = _folder(path, f"{where}.path", base_dir) if path else None
    task_type = entry.get("type")
    if task_type is None:
        task = _builtin(name, where)
        return _with_local_data(task, folder, where) if folder else task
    if task_type not in task_types.TASK_TYPES:
        raise ConfigError(f"{where}.type is {task_type!r}: use one of {', '.join(task_types.TASK_TYPES)}")
    if folder is None:
        raise ConfigError(f"{where}.path is missing: a task with a type reads its data from a local folder")
    return _local_task(name, task_type, folder, entry, where)


def _folder(path: str, where: str, base_dir: Path | None) -> Path:
    folder = Path(path).expanduser()
    if not folder.is_absolute() and base_dir is not None and not folder.exists():
        folder = base_dir / folder
    if not folder.is_dir():
        raise ConfigError(f"{where} {path!r} is not a folder: point it at a local dataset folder")
    return folder.resolve()


@functools.cache
def _task_names() -> tuple[str, ...]:
    import mteb

    return tuple(sorted(t.metadata.name for t in mteb.get_tasks()))


def _builtin(name: str, where: str) -> Any:
    import mteb

    try:
        return mteb.get_task(name)
    except (KeyError, ValueError):
        hint = did_you_mean(name, _task_names(), n=3)
        fix = f"did you mean {', '.join(hint)}?" if hint else "see `python -m mteb available-tasks` for names"
        raise ConfigError(f"{where}: unknown task '{name}': {fix}") from None


def folder_fingerprint(folder: Path) -> str:
    """A short content fingerprint of a data folder (paths, sizes, mtimes) for result metadata."""
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.relative_to(folder)}\0{stat.st_size}\0{int(stat.st_mtime)}\n".encode())
    return "local-" + digest.hexdigest()[:10]


def _guess_lang(folder: Path) -> str:
    text = "".join(task_types.sample_texts(folder))
    cjk = sum("\u4e00" <= ch <= "\u9fff" for ch in text)
    return "cmn-Hans" if text and cjk / len(text) > 0.05 else "eng-Latn"


def _local_task(name: str, task_type: str, folder: Path, entry: dict, where: str) -> Any:
    from mteb.abstasks.task_metadata import TaskMetadata

    spec = task_types.TASK_TYPES[task_type]
    splits = spec.splits(folder)
    split = entry.get("split")
    if split is None:
        if not splits:
            raise ConfigError(f"{where}: {folder} holds no {task_type} split files: see the layouts in README")
        split = "test" if "test" in splits else splits[0]
    elif split not in splits and not spec.family.serves_any_split(folder):
        raise ConfigError(f"{where}.split '{split}' is not in {folder} (found: {', '.join(splits) or 'none'})")
    main_score = entry.get("main_score") or spec.main_score
    try:
        metadata = TaskMetadata(
            name=name,
            description=entry.get("description") or f"{task_type} on local data from {folder}",
            dataset={"path": str(folder), "revision": folder_fingerprint(folder)},
            type=task_type,
            category="t2t",
            modalities=["text"],
            eval_splits=[split],
            eval_langs=[entry.get("lang") or _guess_lang(folder)],
            main_score=main_score,
            license="not specified",
            sample_creation="found",
            bibtex_citation="",
        )
    except Exception as exc:  # pydantic's message is multi-line: keep its gist
        first = str(exc).strip().splitlines()
        raise ConfigError(f"{where} ({name}): invalid task description: {' '.join(first[-2:])}") from None
    base = spec.abstask
    attrs: dict[str, Any] = {
        "metadata": metadata,
        "load_data": _local_loader(folder, task_type, own_score_range=True),
        # mteb names the predictions file from the raw name: a name such as ../../x would climb out
        "prediction_file_name": property(lambda self: layout.predictions_file_name(self.metadata.name)),
    }
    attrs.update(spec.family.task_attrs)  # Clustering: evaluate every text (mteb's default embeds 4 % of them)
    cls = type(name.replace("-", "_"), (base,), attrs)
    return cls()


def _local_loader(folder: Path, task_type: str, own_score_range: bool = False):
    """A ``load_data`` that reads ``folder`` in the layout of ``task_type``.

    ``own_score_range``: an STS task declared from local data normalises gold scores on the
    data's own range; a built-in task keeps the range mteb declares for it.
    """

    def load_data(self, num_proc=None, *, timer=None, **kwargs):
        if self.data_loaded:
            return
        family = task_types.TASK_TYPES[task_type].family
        family.load(self, folder, local_split_map(self, folder, task_type), own_score_range)
        self.data_loaded = True

    return load_data


def local_split_map(task: Any, folder: Path, task_type: str) -> dict[str, str]:
    """The task's eval splits -> the local files that serve them.

    A folder with a single split serves a task whose split has another name (a local
    ``dev`` for a built-in ``test``); otherwise every eval split must be there.
    """
    available = task_types.TASK_TYPES[task_type].splits(folder)
    wanted = list(task.eval_splits)
    present = [s for s in wanted if s in available]
    if present:
        return {s: s for s in present}
    if len(available) == 1:
        logger.info("%s: local split '%s' serves split '%s'", task.metadata.name, available[0], wanted[0])
        return {wanted[0]: available[0]}
    raise ConfigError(
        f"task {task.metadata.name}: none of its splits ({', '.join(wanted)}) is in {folder} "
        f"(found: {', '.join(available) or 'none'}): add the file or set the task's split"
    )


def _with_local_data(task: Any, folder: Path, where: str) -> Any:
    """The built-in task, its data read from ``folder`` in the layout of its type."""
    task_type = task.metadata.type
    if task_type not in task_types.TASK_TYPES:
        raise ConfigError(
            f"{where}: task {task.metadata.name} is of type {task_type}, which has no local layout "
            f"(supported: {', '.join(task_types.TASK_TYPES)})"
        )
    if task.metadata.is_multilingual:
        raise ConfigError(f"{where}: {task.metadata.name} is multilingual: local copies serve monolingual tasks only")
    metadata = task.metadata.model_copy(
        update={"dataset": {"path": str(folder), "revision": folder_fingerprint(folder)}}
    )
    cls = type(
        type(task).__name__,
        (type(task),),
        {"metadata": metadata, "load_data": _local_loader(folder, task_type)},
    )
    local_task = cls()
    # evaluate only the splits the folder holds (mteb's ATEC lists validation and test)
    local_task.filter_eval_splits(list(local_split_map(local_task, folder, task_type)))
    for attr, value in task_types.TASK_TYPES[task_type].family.task_attrs.items():
        if hasattr(local_task, attr):
            setattr(local_task, attr, value)
    return local_task
