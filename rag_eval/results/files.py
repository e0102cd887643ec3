"""Result files in mteb's format, written atomically, and read back for resume.

Each ``<Task>.json`` is what mteb's ``TaskResult.to_disk`` writes (loadable by
``TaskResult.from_disk`` and ``ResultCache``), plus a ``rag_eval`` block (ignored by mteb) holding
what mteb has no field for: the model's source and config, the sample drawn by ``limits``, the stage.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from rag_eval import _compat
from rag_eval.errors import StorageError, one_line
from rag_eval.results.layout import per_item_path

logger = logging.getLogger(__name__)

#: what a full, read-only or forbidden disk answers a write with: a one-line StorageError, not a task failure
_STORAGE_ERRNOS = {
    errno.ENOSPC: "no space left on the device (ENOSPC): free some space or point eval.output_folder at a "
                  "larger disk",
    errno.EDQUOT: "disk quota exceeded (EDQUOT): free some space or point eval.output_folder elsewhere",
    errno.EFBIG: "file too large (EFBIG, a file-size limit such as ulimit -f): raise the limit or point "
                 "eval.output_folder elsewhere",
    errno.EROFS: "read-only file system (EROFS): set eval.output_folder to a writable folder",
    errno.EACCES: "permission denied (EACCES): make it writable or set eval.output_folder to a writable folder",
    errno.EPERM: "operation not permitted (EPERM): set eval.output_folder to a writable folder",
}


#: the errnos only a write gets (a read can get EACCES too: that one is the library's own error)
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def storage_error(exc: BaseException, path: str | Path, errnos: frozenset[int] | None = None,
                  bare: bool = False) -> StorageError | None:
    """The one-line :class:`StorageError` for a failed write of ``path``, or None for any other error.

    ``bare``: an ``OSError`` without an errno counts too (inside rag_eval's own write, where nothing
    but the write can fail: numpy's ``tofile`` raises ``OSError("N requested and M written")``).
    """
    if not isinstance(exc, OSError):
        return None
    if exc.errno is None and bare:
        reason = f"the write failed ({one_line(str(exc))[:120]}): is the disk full?"
    elif exc.errno in (errnos or _STORAGE_ERRNOS):
        reason = _STORAGE_ERRNOS[exc.errno]
    else:
        return None
    return StorageError(f"cannot write {path}: {reason}; nothing half-written is left and "
                        "finished tasks stay on disk (rerun with eval.overwrite_results=false to resume)")


@contextmanager
def storage_guard(path: str | Path, partial: Path | None = None, errnos: frozenset[int] | None = None,
                  bare: bool = False) -> Iterator[None]:
    """Writes to ``path`` inside: a full, read-only or forbidden disk becomes one line naming it.

    ``partial``: a file that a library writes in place (mteb's predictions), removed on such a failure
    so that no half-written file is left. ``errnos``: only these (e.g. :data:`DISK_ERRNOS` around a
    library call that also reads).
    """
    try:
        yield
    except OSError as exc:
        error = storage_error(exc, path, errnos, bare)
        if error is None:
            raise
        if partial is not None:
            try:
                partial.unlink(missing_ok=True)
            except OSError:  # a read-only disk keeps it; the resume check re-reads it
                pass
        raise error from None


def atomic_write(path: Path, write: Callable[[IO], Any], binary: bool = False, fsync: bool = True) -> None:
    """``write(fh)`` into a temp file in the same folder, then rename: a reader (a resumed run,
    a concurrent sweep job) never sees half a file, and a killed run leaves none. ``fsync=False``
    for files that are only progress notes (a crash may lose the last version, never half of one).

    A disk that is full, read-only or forbidden raises :class:`StorageError` naming ``path``
    (the temp file is removed, an older ``path`` stays as it was).
    """
    with storage_guard(path, bare=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as fh:
                write(fh)
                fh.flush()
                if fsync:
                    os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def check_writable(folder: str | Path, key: str = "eval.output_folder") -> Path:
    """Create ``folder`` and a temp file in it, before any model loads: one line if it cannot be.

    Catches a folder that cannot be created (``/proc/x``, a file in the way), a read-only or
    forbidden one and a full disk, at start-up rather than after the first task.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StorageError(f"{key} {folder} is a file, not a folder: choose another folder") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise StorageError(f"{key} {folder} cannot be created ({reason}): choose a folder you can write, "
                           f"e.g. {key}=./outputs") from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".rag_eval-write-check.", dir=folder)
        try:
            os.write(fd, b"\n")  # a full disk answers here, before any model loads
        finally:
            os.close(fd)
            os.unlink(tmp)
    except OSError as exc:
        reason = _STORAGE_ERRNOS.get(exc.errno, exc.strerror or type(exc).__name__).split(":")[0]
        raise StorageError(f"{key} {folder} is not writable ({reason}): choose a folder you can write, "
                           f"e.g. {key}=./outputs") from None
    return folder


def atomic_write_text(path: Path, text: str, fsync: bool = True) -> None:
    atomic_write(path, lambda fh: fh.write(text), fsync=fsync)


@contextmanager
def locked(lock: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``lock`` (jobs sharing an output folder take turns); a lock file that
    cannot be created (full, read-only disk) is one line naming it."""
    with storage_guard(lock):
        fh = lock.open("a")
    with fh:
        try:
            import fcntl
        except ImportError:  # Windows: no lock, the merge still works for jobs that do not overlap
            yield
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_task_result(path: Path, task_result: Any, extra: dict[str, Any]) -> None:
    """Save an mteb ``TaskResult`` as ``to_disk`` does, plus the ``rag_eval`` block."""
    obj = task_result.model_dump()
    obj["date"] = task_result.date.timestamp() if task_result.date else None
    _compat.round_scores(task_result, obj["scores"], 6)
    obj["rag_eval"] = extra
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def write_per_item(result_file: Path, payload: dict[str, Any]) -> Path:
    """The per-item data of a result (``rag_eval.stages.per_item``) beside its file, atomically."""
    path = per_item_path(result_file)
    atomic_write_text(path, json.dumps(payload, ensure_ascii=False, separators=(",", ":")))
    return path


def read_per_item(result_file: Path) -> dict[str, Any] | None:
    """The per-item data beside a result file, or None when there is none (or it is unreadable)."""
    path = per_item_path(result_file)
    if not path.is_file():
        return None
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except Exception as exc:
        logger.warning("ignoring unreadable per-item file %s (%s)", path, exc)
        return None
    return obj if isinstance(obj, dict) and isinstance(obj.get("splits"), dict) else None


def write_model_meta(folder: Path, meta: Any) -> None:
    """``model_meta.json`` beside the results, as mteb's ResultCache keeps it."""
    path, text = folder / "model_meta.json", json.dumps(meta.to_dict(), indent=2, default=str)
    try:
        same = path.read_text(encoding="utf-8") == text
    except (OSError, UnicodeDecodeError):  # missing, or corrupt: written again
        same = False
    if not same:
        atomic_write_text(path, text)


def load_task_result(path: Path) -> tuple[Any, dict[str, Any]] | None:
    """A finished result file, or None if it is missing or unreadable (then the task reruns)."""
    if not path.is_file():
        return None
    from mteb import TaskResult

    try:
        result = TaskResult.from_disk(path)
        extra = json.loads(path.read_text(encoding="utf-8")).get("rag_eval", {})
        if not isinstance(extra, dict):
            raise ValueError("its rag_eval block is not a mapping")
    except Exception as exc:
        first = one_line(str(exc))[:200]
        logger.warning("ignoring unreadable result %s (%s: %s): the task will run again", path,
                       type(exc).__name__, first)
        return None
    if not result.scores or not any(result.scores.values()):
        logger.warning("ignoring result %s: it holds no scores; the task will run again", path)
        return None
    return result, extra
