"""``failures.json``: the tasks that failed, so later reports still list them (they have no result file).

It lives at the top of the output folder, never beside the result files, where mteb's
ResultCache would read it. Jobs that share a folder merge into it under an ``flock``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from rag_eval.results.files import atomic_write_text, locked, storage_guard
from rag_eval.results.layout import revision_and_experiment
from rag_eval.results.outcome import Status, TaskOutcome

logger = logging.getLogger(__name__)

FAILURES_FILE = "failures.json"


def _key(entry: dict[str, Any]) -> tuple:
    return (entry.get("stage") or "", entry.get("model") or "", entry.get("revision") or "",
            entry.get("experiment") or "", entry.get("task"))


def _entry(o: TaskOutcome, now: float) -> dict[str, Any]:
    if o.place is not None:
        revision, experiment = o.place.revision, o.place.experiment
    else:
        revision, experiment = revision_and_experiment(o.path) if o.path is not None else ("", "")
    return {"task": o.task, "task_type": o.task_type, "stage": o.stage or "", "model": o.model,
            "revision": revision, "experiment": experiment,
            "metric": o.main_metric or "", "error": o.error or "", "seconds": round(o.seconds, 3),
            "sample": o.sample, "time": now}


def write_failures(outcomes: list[TaskOutcome], folder: str | Path) -> Path | None:
    """Record the run's failed tasks in ``<folder>/failures.json``.

    The file is merged, not replaced, so the jobs of a Hydra multirun that share
    ``output_folder`` keep each other's failures (an ``flock`` on ``.failures.lock`` serialises
    them): entries of tasks this run did not touch stay; a task this run finished (or failed
    again) replaces its old entry; the file is removed when no failure is left.
    Returns the file, or None when there is none.
    """
    folder = Path(folder)
    now = time.time()
    touched, failed = set(), []
    for o in outcomes:
        entry = _entry(o, now)
        touched.add(_key(entry))
        if o.status == Status.FAILED:
            failed.append(entry)
    path = folder / FAILURES_FILE
    if not failed and not path.is_file():
        return None
    with storage_guard(path):
        folder.mkdir(parents=True, exist_ok=True)
    with locked(folder / ".failures.lock"):
        old: list[dict[str, Any]] = []
        if path.is_file():
            try:
                old = [e for e in json.loads(path.read_text(encoding="utf-8")) if _key(e) not in touched]
            except Exception as exc:
                logger.warning("replacing unreadable %s (%s)", path, exc)
        entries = old + failed
        if entries:
            atomic_write_text(path, json.dumps(entries, indent=2, ensure_ascii=False, default=str))
            return path
        with storage_guard(path):
            path.unlink(missing_ok=True)
        return None


def read_failures(path: Path) -> list[dict[str, Any]]:
    """The entries of a ``failures.json`` (an unreadable file is logged and reads as none)."""
    try:
        entries = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(entries, list):
            raise ValueError("not a list")
    except Exception as exc:
        logger.warning("skipping unreadable %s (%s)", path, exc)
        return []
    return [e for e in entries if isinstance(e, dict) and "task" in e]
