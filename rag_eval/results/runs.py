"""Job records: what each job that writes into an output folder planned, and how far it got.

Every run of :func:`rag_eval.run_task` (a CLI run, one job of a multirun on any launcher, a
plugin call) keeps one record, ``<output_folder>/.runs/<job>.json``, rewritten atomically:

* once its tasks are resolved: status ``starting`` and the plan (model, stage, task; revisions
  unknown until the models load), so a job that dies while loading still shows what it owed;
* once its models are loaded: the exact plan (revisions, stage-2 experiment), status ``running``;
* after every task: the counts (ok / failed / cached) and the time of the update;
* at the end: ``done``, or ``error`` with its one-line message, and the wall time.

A report over a half-finished folder (``python -m rag_eval.report``) can then tell what is done,
failed, still running (the job is alive) and missing (planned by a job that ended or died). Each
job writes only its own record, so jobs sharing a folder never contend for one file.

Progress and summary lines go to the ``rag_eval.jobs`` logger, which ends up in each launcher's
job log (Hydra's ``<sweep>/<n>/rag_eval.log``, submitit's ``.submitit/<id>/*_log.out``, Ray's driver).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag_eval.errors import StorageError, redact
from rag_eval.results.files import atomic_write_text
from rag_eval.results.layout import runs_folder, safe_path_part
from rag_eval.results.outcome import Status, TaskOutcome

logger = logging.getLogger("rag_eval.jobs")

#: a record in one of these states belongs to a job that has not ended (unless its process is gone)
ACTIVE = ("starting", "running")


@dataclass
class JobInfo:
    """Who runs: a label for the log lines (``job 3`` in a multirun) and what the launcher knows."""

    label: str = "run"
    multirun: bool = False
    details: dict[str, Any] = field(default_factory=dict)  # Hydra: job num / id, overrides, job folder


def planned_task(stage: str, model: str, revision: str, experiment: str, task: str, task_type: str) -> dict:
    """One entry of a plan: the result file a job means to write (``revision`` "" = not known yet)."""
    return {"stage": stage or "", "model": model, "revision": revision or "", "experiment": experiment or "",
            "task": task, "task_type": task_type}


class JobRecord:
    """This process's record in ``<output_folder>/.runs/`` and its progress lines."""

    def __init__(self, output_folder: str | Path, info: JobInfo | None = None):
        self.info = info or JobInfo()
        self.folder = Path(output_folder)
        self.started, self._t0 = time.time(), time.monotonic()
        host, pid = socket.gethostname(), os.getpid()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.started))
        # pid + random: Ray reuses a worker process for several jobs, and SLURM nodes share pids
        self.id = safe_path_part(f"{stamp}-{host}-{pid}-{uuid.uuid4().hex[:6]}")
        self.path = runs_folder(self.folder) / f"{self.id}.json"
        self.counts = {s.key: 0 for s in (Status.OK, Status.FAILED, Status.CACHED)}
        self.data: dict[str, Any] = {
            "job": self.id, "label": self.info.label, "host": host, "pid": pid, "status": "starting",
            "started": self.started, "updated": self.started, "finished": None, "seconds": None,
            "output_folder": str(self.folder.resolve()), "planned": [], "done": self.counts, "error": "",
            **({"launcher": self.info.details} if self.info.details else {}),
        }
        self._warned = False

    def plan(self, entries: list[dict], status: str = "running") -> None:
        """Record the tasks this job will run (see :func:`planned_task`)."""
        self.data["planned"], self.data["status"] = list(entries), status
        self._write()

    def task_done(self, outcome: TaskOutcome) -> None:
        """Count one finished task (or stage of a task), log its progress line, update the record."""
        key = Status(outcome.status).key
        self.counts[key if key in self.counts else Status.FAILED.key] += 1
        n, total = sum(self.counts.values()), len(self.data["planned"])
        what = f"{outcome.task} {outcome.stage}" if outcome.stage else outcome.task
        if outcome.status == Status.FAILED:
            result = f"{Status.FAILED}: {outcome.error}"
        else:
            score = f"{outcome.main_score:.4f}" if outcome.main_score is not None else "-"
            result = f"{outcome.status} {score} ({outcome.main_metric or 'main_score'})"
        logger.info("rag_eval: %s [%d/%d] %s: %s, %.1f s", self.info.label, n, total, what, result, outcome.seconds)
        self._write()

    def finish(self, error: str | None = None) -> str:
        """Close the record (``done`` or ``error``); returns the job's summary line (for the caller to log
        after its own output, so that the line is the job's last)."""
        seconds = time.monotonic() - self._t0
        self.data.update(status="error" if error else "done", finished=time.time(), seconds=round(seconds, 1),
                         error=error or "")
        self._write()
        c = self.counts
        if error:
            line = (f"rag_eval: {self.info.label} stopped after {sum(c.values())} of {len(self.data['planned'])} "
                    f"tasks in {seconds:.0f} s: {error}")
        else:
            line = (f"rag_eval: {self.info.label} done: {c['ok']} ok, {c['failed']} failed, {c['cached']} cached "
                    f"in {seconds:.0f} s -> {self.data['output_folder']}")
        return line

    def _write(self) -> None:
        self.data["updated"] = time.time()
        try:
            # no fsync: a progress note, rewritten after every task (the rename alone keeps it whole)
            atomic_write_text(self.path, redact(json.dumps(self.data, indent=1, ensure_ascii=False, default=str)),
                              fsync=False)
        except (OSError, StorageError) as exc:  # the record helps to follow a run; losing it must not fail it
            if not self._warned:
                logger.warning("could not write the job record %s: %s", self.path, exc)
                self._warned = True


def read_jobs(root: str | Path) -> list[dict[str, Any]]:
    """Every job record under ``<root>/.runs``, oldest first (an unreadable one is logged and skipped)."""
    folder = runs_folder(Path(root))
    if not folder.is_dir():
        return []
    records = []
    for path in sorted(folder.glob("*.json")):
        if path.name.startswith("."):
            continue
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(record, dict) or not isinstance(record.get("planned"), list):
                raise ValueError("not a job record")
        except Exception as exc:
            logger.warning("skipping unreadable job record %s (%s)", path, exc)
            continue
        records.append(record)
    return sorted(records, key=lambda r: r.get("started") or 0)


def job_state(record: dict[str, Any]) -> str:
    """``done`` | ``error`` (ended) | ``running`` | ``died`` (its process is gone, the record still active).

    A process on another host cannot be looked at from here: such a record is taken at its word
    (the report shows when it was last updated).
    """
    status = record.get("status") or "starting"
    if status not in ACTIVE:
        return str(status)
    if record.get("host") != socket.gethostname():
        return "running"
    return "running" if _alive(record.get("pid")) else "died"


def _alive(pid: Any) -> bool:
    try:
        pid = int(pid)
        os.kill(pid, 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    try:  # a zombie (ended, not yet reaped by its parent) is not running
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True
