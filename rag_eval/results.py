"""Result files in mteb's format, written atomically, and the per-run summary.

Layout: ``<output_folder>/[<stage>/]<model>/<revision>/<Task>.json`` - the file mteb's
``TaskResult.to_disk`` writes (loadable by ``TaskResult.from_disk`` and ``ResultCache``),
plus a ``rag_eval`` block (ignored by mteb) holding what mteb has no field for: the model's
source and config, the sample drawn by ``limits``, the stage. Every name that becomes a path
component is sanitised, so a model or task name cannot climb out of ``output_folder``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rag_eval.resolve.models import safe_path_part

logger = logging.getLogger(__name__)


@dataclass
class TaskOutcome:
    """What happened to one task in one stage."""

    task: str
    task_type: str
    model: str
    stage: str | None = None
    status: str = "ok"  # ok | cached | failed
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)  # split -> metrics
    main_score: float | None = None
    main_metric: str | None = None
    error: str | None = None
    seconds: float = 0.0
    sample: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def result_path(output_folder: Path, model: str, revision: str, task: str, stage: str | None = None) -> Path:
    root = Path(output_folder)
    if stage:
        root = root / safe_path_part(stage)
    return root / safe_path_part(model) / safe_path_part(revision or "no_revision_available") / (
        safe_path_part(task) + ".json"
    )


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
    task_result._round_scores(obj["scores"], 6)
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


def split_scores(task_result: Any) -> dict[str, dict[str, Any]]:
    """``{split: {metric: value, "main_score": ...}}`` from an mteb TaskResult.

    A single ``default`` subset is flattened; several subsets keep their own dicts under
    ``subsets`` and the split's ``main_score`` is their mean (mteb's aggregation).
    """
    out: dict[str, dict[str, Any]] = {}
    for split, entries in task_result.scores.items():
        clean = [{k: v for k, v in e.items() if k not in ("hf_subset", "languages")} for e in entries]
        if len(entries) == 1:
            out[split] = clean[0]
        else:
            mains = [e["main_score"] for e in entries if e.get("main_score") is not None]
            out[split] = {
                "main_score": sum(mains) / len(mains) if mains else None,
                "subsets": {e["hf_subset"]: c for e, c in zip(entries, clean, strict=False)},
            }
    return out


def main_score_of(scores: dict[str, dict[str, Any]]) -> float | None:
    mains = [s.get("main_score") for s in scores.values() if s.get("main_score") is not None]
    return sum(mains) / len(mains) if mains else None
