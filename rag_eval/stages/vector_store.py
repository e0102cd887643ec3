"""Vectors by key, on disk: the storage of both caches, the bi-encoder's embeddings (``CachingEncoder``,
stages/embedding_cache.py) and the reranker's pair scores (stages/reranking.py, one float per key).

Storage: ``chunk-<pid>-<random>-NNNNN.npy`` (float32, ``allow_pickle=False``) + ``.json`` (keys),
each written to a temp file and renamed (the vectors first, the keys last, and a chunk is read
only once its keys exist), so a killed run leaves no half-written chunk. The random part keeps
the names of concurrent writers apart even where pids repeat (jobs on several nodes of a shared
file system, a Ray worker that runs several jobs).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rag_eval.errors import one_line
from rag_eval.results import atomic_write, atomic_write_text

logger = logging.getLogger(__name__)


class VectorStore(Mapping):
    """Vectors by key (a read-only mapping; :meth:`add` stores them), on disk (``folder``) and, where
    needed, in memory (``folder=None``: this run only).

    Memory: the keys of every chunk are read when the cache opens, but a chunk's vectors only when
    one of its keys is looked up; vectors just encoded and written are not kept in memory (the caller
    has them). So a cache holding many tasks' corpora costs the keys, not the vectors, and a cold run
    holds one copy of the vectors it encodes (measured in docs/BENCHMARKS.md (d)).
    """

    def __init__(self, folder: Path | None):
        self.folder = Path(folder) if folder is not None else None
        self._rows: dict[str, np.ndarray] = {}  # vectors in memory (loaded, or never written)
        self._on_disk: dict[str, int] = {}  # key -> index in self._files of the chunk that holds it
        self._files: list[tuple[Path, list[str]]] = []  # the chunks opened: keys file (.npy beside it), keys
        self._width: int | None = None
        self._stem = f"chunk-{os.getpid()}-{uuid.uuid4().hex[:8]}"  # this writer's own file names
        self._written = 0
        self._open()

    def __contains__(self, key: object) -> bool:
        return key in self._rows or key in self._on_disk

    def __getitem__(self, key: str) -> np.ndarray:
        """The vector of ``key``, its chunk read first if it is still on disk."""
        if key not in self._rows:
            if key not in self._on_disk:
                raise KeyError(key)
            self.load([key])
        return self._rows[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows.keys() | self._on_disk.keys())

    def __len__(self) -> int:
        return len(self._rows.keys() | self._on_disk.keys())

    @property
    def in_memory(self) -> int:
        """How many vectors are held in memory now (the rest are on disk until looked up)."""
        return len(self._rows)

    def _open(self) -> None:
        """Read every chunk's keys and its vector file's header; a corrupt chunk is logged once, removed,
        and its texts are encoded again.

        Corrupt: a keys file that is not a list of strings, a vector file whose header numpy cannot
        read (or not a 2-D float array), shorter than its header says, counts that differ, or vectors of
        another width than the other chunks'. A chunk that cannot be read for another reason
        (permissions, I/O) is skipped but kept.
        """
        if self.folder is None or not self.folder.is_dir():
            return
        chunks: list[tuple[Path, list[str], tuple[int, ...]]] = []
        for keys_file in sorted(self.folder.glob("chunk-*.json")):
            vec_file = keys_file.with_suffix(".npy")
            try:
                keys = json.loads(keys_file.read_text(encoding="utf-8"))
                shape, dtype, missing_bytes = _npy_header(vec_file)
            except FileNotFoundError as exc:
                self._drop(keys_file, f"{Path(exc.filename or vec_file).name} is missing")
                continue
            except OSError as exc:  # not the chunk's fault: keep it for a later run
                logger.warning("skipping unreadable embedding chunk %s (%s)", keys_file, exc)
                continue
            except Exception as exc:  # JSON / npy garbage: numpy raises ValueError, EOFError, ...
                self._drop(keys_file, f"{type(exc).__name__}: {one_line(str(exc))[:160]}")
                continue
            problem = _chunk_problem(keys, shape, dtype) or (
                f"{vec_file.name} is {missing_bytes} bytes shorter than its header says" if missing_bytes else None)
            if problem:
                self._drop(keys_file, problem)
                continue
            chunks.append((keys_file, keys, shape))
        widths = Counter(shape[1] for _f, _k, shape in chunks)
        self._width = widths.most_common(1)[0][0] if widths else None
        for keys_file, keys, shape in chunks:
            if shape[1] != self._width:
                self._drop(keys_file, f"{shape[1]}-wide vectors, the other chunks' are {self._width}-wide")
                continue
            self._files.append((keys_file, keys))
            self._on_disk.update(dict.fromkeys(keys, len(self._files) - 1))

    def _drop(self, keys_file: Path, problem: str) -> None:
        """Log a corrupt chunk once and remove both of its files (a later run would log it again)."""
        logger.warning("ignoring corrupt embedding chunk %s (%s): its texts are encoded again", keys_file, problem)
        for path in (keys_file, keys_file.with_suffix(".npy")):
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass

    def load(self, keys: list[str]) -> None:
        """Bring the vectors of ``keys`` that are on disk into memory, a chunk at a time.

        A chunk that cannot be read now (cut short or changed since the cache opened, an I/O error)
        is dropped: its keys are no longer in the cache, so the caller encodes them again.
        """
        wanted = sorted({self._on_disk[k] for k in keys if k not in self._rows and k in self._on_disk})
        for index in wanted:
            keys_file, chunk_keys = self._files[index]
            try:
                vecs = np.load(keys_file.with_suffix(".npy"), allow_pickle=False)
                problem = _chunk_problem(chunk_keys, vecs.shape, vecs.dtype)
            except Exception as exc:
                problem = f"{type(exc).__name__}: {one_line(str(exc))[:160]}"
            if not problem and vecs.shape[1] != self._width:
                problem = f"{vecs.shape[1]}-wide vectors, the other chunks' are {self._width}-wide"
            if problem:  # its keys leave the cache
                for key in chunk_keys:
                    if self._on_disk.get(key) == index:
                        del self._on_disk[key]
                self._drop(keys_file, problem)
                continue
            for key, vec in zip(chunk_keys, vecs.astype(np.float32, copy=False), strict=True):
                if self._on_disk.get(key) == index:  # the copy the cache names (a later chunk may hold a newer one)
                    del self._on_disk[key]
                    self._rows[key] = vec

    def add(self, keys: list[str], vectors: np.ndarray) -> None:
        """Store ``vectors`` under ``keys``: written to disk as one chunk (and not kept in memory), or, with no
        folder (or a write that failed), kept in memory."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if self.folder is None:
            self._rows.update(zip(keys, vectors, strict=True))
            return
        # this writer's own names (pid + random: no clash with a writer of the same pid on another node or
        # an earlier job in a reused process, even when both opened the folder before either wrote)
        stem = f"{self._stem}-{self._written:05d}"
        self._written += 1
        try:
            atomic_write(self.folder / f"{stem}.npy", lambda fh: np.save(_Stream(fh), vectors, allow_pickle=False),
                         binary=True)
            atomic_write_text(self.folder / f"{stem}.json", json.dumps(keys))
        except BaseException:
            self._rows.update(zip(keys, vectors, strict=True))
            raise
        for key in keys:
            self._rows.pop(key, None)
        self._width = self._width or (vectors.shape[1] if vectors.ndim == 2 else None)
        self._files.append((self.folder / f"{stem}.json", list(keys)))
        self._on_disk.update(dict.fromkeys(keys, len(self._files) - 1))


class _Stream:
    """A file seen only through ``write``: numpy then writes in buffered pieces through Python's file object,
    whose failed write carries its errno (ENOSPC, EFBIG, ...). Given the real file, numpy's ``tofile``
    raises a bare ``OSError("N requested and M written")`` that cannot be told from any other error."""

    def __init__(self, fh: Any):
        self.write = fh.write


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape and dtype from a ``.npy`` file's header, and how many bytes its data is short of them (0: whole)."""
    fmt = np.lib.format
    with path.open("rb") as fh:
        version = fmt.read_magic(fh)
        read = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
        if read is None:
            raise ValueError(f"unsupported .npy format version {version}")
        shape, _fortran, dtype = read(fh)
        data_start = fh.tell()
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    return shape, dtype, max(0, data_start + expected - path.stat().st_size)


def _chunk_problem(keys: Any, shape: tuple[int, ...], dtype: Any) -> str | None:
    """What is wrong with a chunk (its keys, its vectors' shape and dtype), or None."""
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        return "its keys are not a list of strings"
    if len(shape) != 2 or not np.issubdtype(dtype, np.floating):
        return f"its vectors are not a 2-D float array ({dtype}, shape {shape})"
    if len(keys) != shape[0]:
        return f"{len(keys)} keys for {shape[0]} vectors"
    return None
