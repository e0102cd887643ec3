"""Result files in mteb's format, written atomically, and read back for resume.

Each ``<Task>.json`` is what mteb's ``TaskResult.to_disk`` writes (loadable by
``TaskResult.from_disk`` and ``ResultCache``), plus a ``rag_eval`` block (ignored by mteb) holding
what mteb has no field for: the model's source and config, the sample drawn by ``limits``, the stage.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from rag_eval import _compat

logger = logging.getLogger(__name__)


def atomic_write(path: Path, write: Callable[[IO], Any], binary: bool = False) -> None:
    """``write(fh)`` into a temp file in the same folder, then rename: a reader (a resumed run,
    a concurrent sweep job) never sees half a file, and a killed run leaves none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text))


def write_task_result(path: Path, task_result: Any, extra: dict[str, Any]) -> None:
    """Save an mteb ``TaskResult`` as ``to_disk`` does, plus the ``rag_eval`` block."""
    obj = task_result.model_dump()
    obj["date"] = task_result.date.timestamp() if task_result.date else None
    _compat.round_scores(task_result, obj["scores"], 6)
    obj["rag_eval"] = extra
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def write_model_meta(folder: Path, meta: Any) -> None:
    """``model_meta.json`` beside the results, as mteb's ResultCache keeps it."""
    path, text = folder / "model_meta.json", json.dumps(meta.to_dict(), indent=2, default=str)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        atomic_write_text(path, text)


def load_task_result(path: Path) -> tuple[Any, dict[str, Any]] | None:
    """A finished result file, or None if it is missing or unreadable (then the task reruns)."""
    if not path.is_file():
        return None
    from mteb import TaskResult

    try:
        result = TaskResult.from_disk(path)
        extra = json.loads(path.read_text(encoding="utf-8")).get("rag_eval", {})
    except Exception as exc:
        logger.warning("ignoring unreadable result %s (%s): the task will run again", path, exc)
        return None
    if not result.scores or not any(result.scores.values()):
        return None
    return result, extra
