"""The bi-encoder as rag_eval runs it: each unique text encoded once, cached on disk.

mteb's ``CachedEmbeddingWrapper`` rebuilds its dataloader from rows that mteb has already
formatted, so a corpus document's title is prepended a second time and the scores change. This
cache works on the texts exactly as the model receives them instead, and keys each vector by
(prompt type, resolved prompt, text); the folder it lives in is keyed by the model and every
setting that changes a vector (``Fingerprint.embedding_cache_dir``, resolve/fingerprint.py).

Storage: ``chunk-<pid>-<random>-NNNNN.npy`` (float32, ``allow_pickle=False``) + ``.json`` (keys),
each written to a temp file and renamed (the vectors first, the keys last, and a chunk is read
only once its keys exist), so a killed run leaves no half-written chunk. The random part keeps
the names of concurrent writers apart even where pids repeat (jobs on several nodes of a shared
file system, a Ray worker that runs several jobs).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rag_eval import _compat
from rag_eval.errors import one_line
from rag_eval.results import atomic_write, atomic_write_text
from rag_eval.stages.batching import batches
from rag_eval.stages.progress import progress, prompt_step

logger = logging.getLogger(__name__)


class EmbeddingCache(Mapping):
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



#: the vocabulary probe reads at most this many characters of each text it samples
PROBE_CHARS = 2000
#: the truncation probe reads at most max_seq_length x this many characters of each text
PROBE_CHARS_PER_TOKEN = 16


class CachingEncoder:
    """An mteb encoder that encodes each unique text once and answers repeats from the cache.

    * Deduplication: a text repeated within a call (a passage shared by queries, a sentence in
      several pairs), across tasks, stages or runs is encoded once; ``texts_encoded`` counts
      the texts sent to the model.
    * Batches: the new texts are encoded longest first, in exactly the batches
      sentence-transformers would form in one ``encode`` call (``stages/batching.py``), one call
      per batch. Vectors are therefore bit-identical to mteb's own for a call without
      repeats; a repeat dropped from a call changes the batch neighbours of the texts around
      it (float noise ~1e-7, which only threshold metrics over exact ties can notice).
    * Devices: ``device: [cuda:0, cuda:1]`` (a list) encodes through sentence-transformers' own
      multi-process pool, started once per run and stopped by :meth:`close`.
    * Progress: one bar per call, named ``<task> · <stage> · encode queries|documents|texts``.

    ``folder=None`` keeps the vectors in memory only (``cache_embeddings: false``).
    """

    def __init__(self, encoder: Any, folder: Path | None, stage: str | None = None,
                 devices: list[str] | None = None, region: Any = None):
        self.encoder = encoder
        self.region = region or contextlib.nullcontext  # model.precision's autocast region (resolve/precision.py)
        self.cache = EmbeddingCache(folder)
        self.stage = stage
        self.devices = list(devices) if devices else None
        self._pool: dict[str, Any] | None = None
        self._meta: Any = None
        self.texts_encoded = 0
        self.truncated = 0
        self._tokens: dict[str, list[int]] = {}  # task -> [tokens probed, of them unknown to the vocabulary]

    @property
    def mteb_model_meta(self) -> Any:
        return self._meta if self._meta is not None else self.encoder.mteb_model_meta

    @mteb_model_meta.setter
    def mteb_model_meta(self, meta: Any) -> None:  # mteb's CompressionWrapper records its dtype here
        self._meta = meta

    def similarity(self, a: Any, b: Any) -> Any:
        return self.encoder.similarity(a, b)

    def similarity_pairwise(self, a: Any, b: Any) -> Any:
        return self.encoder.similarity_pairwise(a, b)

    def _count_truncated(self, task: str, texts: list[str]) -> list[str]:
        """Log how many texts exceed the model's max_seq_length (the model truncates them); return the texts
        to encode, a text far longer than the model reads cut to a prefix that still fills max_seq_length.

        Bounded: only the first ``max_seq_length x PROBE_CHARS_PER_TOKEN`` characters of a text are
        tokenised, here and (for a text cut) by the model: a 10 MB line costs what a long one does. A text
        whose prefix does not fill max_seq_length with room to spare is passed whole (the same vectors).
        """
        model = getattr(self.encoder, "model", None)
        tokenizer, limit = getattr(model, "tokenizer", None), getattr(model, "max_seq_length", None)
        if tokenizer is None or not limit or not callable(tokenizer):
            return texts
        budget = limit * PROBE_CHARS_PER_TOKEN
        try:
            ids = tokenizer([t[:budget] for t in texts], add_special_tokens=True, verbose=False)["input_ids"]
        except Exception:  # a tokenizer that cannot batch plain strings: nothing to report
            return texts
        lengths = [len(row) for row in ids]
        over = sum(n > limit for n in lengths)
        if over:
            logger.warning("%s: %d of %d texts are longer than max_seq_length=%d tokens (longest %d%s) and are "
                           "truncated", task, over, len(texts), limit, max(lengths),
                           "+" if any(len(t) > budget for t in texts) else "")
        self.truncated += over
        # the cut-off word at the prefix's end is far past the max_seq_length tokens the model keeps
        return [t[:budget] if len(t) > budget and n > limit + 16 else t for t, n in zip(texts, lengths, strict=True)]

    def _probe_vocabulary(self, task: str, texts: list[str], n: int = 256) -> None:
        """Count how many tokens of (the first ``n``) texts (their first ``PROBE_CHARS`` characters) the
        tokenizer maps to its unknown token.

        An English vocabulary reads most Chinese characters as ``[UNK]``: such a model's scores say
        little about the texts, and the report says so (see :meth:`vocabulary_stats`).
        """
        model = getattr(self.encoder, "model", None)
        tokenizer = getattr(model, "tokenizer", None)
        unk = getattr(tokenizer, "unk_token_id", None)
        if unk is None or not callable(tokenizer) or not texts:
            return
        try:
            ids = tokenizer([t[:PROBE_CHARS] for t in texts[:n]], add_special_tokens=False, verbose=False)["input_ids"]
        except Exception:  # a tokenizer that cannot batch plain strings: nothing to report
            return
        counts = self._tokens.setdefault(task, [0, 0])
        counts[0] += sum(len(row) for row in ids)
        counts[1] += sum(t == unk for row in ids for t in row)

    def vocabulary_stats(self, task: str) -> dict[str, Any] | None:
        """``{"unk_rate", "tokens_probed"}`` of the texts this encoder saw for ``task`` (None: not probed)."""
        tokens, unknown = self._tokens.get(task, (0, 0))
        return {"unk_rate": round(unknown / tokens, 4), "tokens_probed": tokens} if tokens else None

    def _prompt(self, task_metadata: Any, prompt_type: Any) -> str:
        prompts = getattr(self.encoder, "model_prompts", None) or {}
        name = _compat.prompt_name(prompts, task_metadata, prompt_type)
        return prompts.get(name, "") if name else ""

    def encode(self, inputs: Any, *, task_metadata: Any, hf_split: str, hf_subset: str,
               prompt_type: Any = None, **kwargs: Any) -> np.ndarray:
        texts = [text for batch in inputs for text in batch["text"]]
        self._probe_vocabulary(task_metadata.name, texts)
        prompt = self._prompt(task_metadata, prompt_type)
        keys = [text_key(prompt_type, prompt, t) for t in texts]
        self.cache.load(keys)  # the hits' chunks, before deciding what is missing (a corrupt one is dropped)
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in self.cache:
                missing.setdefault(key, text)
        new: np.ndarray | None = None
        if missing:
            bounded = self._count_truncated(task_metadata.name, list(missing.values()))
            show = kwargs.pop("show_progress_bar", None)
            call = {"task_metadata": task_metadata, "hf_split": hf_split, "hf_subset": hf_subset,
                    "prompt_type": prompt_type, **kwargs}
            with progress(len(missing), task=task_metadata.name, stage=self.stage, step=prompt_step(prompt_type),
                          show=show) as bar:
                new = self._encode_new(bounded, call, bar)
            self._store(task_metadata.name, list(missing), new)
            self.texts_encoded += len(missing)
        logger.debug("%s: %d texts, %d encoded, %d from cache", task_metadata.name, len(texts), len(missing),
                     len(texts) - len(missing))
        return self._answer(keys, list(missing), new)

    def _store(self, task: str, keys: list[str], vectors: np.ndarray) -> None:
        """Cache the new vectors, except any holding NaN / Infinity: never kept, so a rerun encodes them again
        (a served model's answers are refused before they get here; this guards every encoder)."""
        finite = np.isfinite(vectors).all(axis=1) if vectors.ndim == 2 else np.ones(len(keys), dtype=bool)
        if not finite.all():
            logger.warning("%s: %d of %d new vectors hold NaN or Infinity: they are not cached", task,
                           int((~finite).sum()), len(keys))
            keys, vectors = [k for k, ok in zip(keys, finite, strict=True) if ok], vectors[finite]
        if keys:
            self.cache.add(keys, vectors)

    def _answer(self, keys: list[str], new_keys: list[str], new: np.ndarray | None) -> np.ndarray:
        """The vectors of ``keys`` in order: the new ones from ``new`` (rows in ``new_keys`` order), the rest
        from the cache. A call whose texts were all new and unique gets ``new`` itself, which the cache
        does not hold (it is on disk): no second copy of a cold corpus chunk."""
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        if new is not None and self.cache.folder is not None and new_keys == keys:
            return new
        row_of = {k: j for j, k in enumerate(new_keys)} if new is not None else {}
        first = new[0] if new is not None else self.cache[keys[0]]
        out = np.empty((len(keys), first.shape[0]), dtype=np.float32)
        for i, key in enumerate(keys):
            j = row_of.get(key)
            out[i] = new[j] if j is not None else self.cache[key]
        return out

    def _encode_new(self, texts: list[str], call: dict[str, Any], bar: Any) -> np.ndarray:
        """Encode ``texts`` (unique, none cached) through the wrapped mteb encoder; rows in input order."""
        batch_size = int(call.get("batch_size") or 32)
        if getattr(self.encoder, "batches_itself", False):  # a served model: its own requests, in order
            vecs = self.encoder.encode(_loader(texts), on_batch=bar.update, show_progress_bar=False, **call)
            return _as_numpy(vecs)
        with self.region():
            return self._encode_batches(texts, call, bar, batch_size)

    def _encode_batches(self, texts: list[str], call: dict[str, Any], bar: Any, batch_size: int) -> np.ndarray:
        if self.devices:
            # the pool splits each call over its workers; a few batches per worker per call
            # keeps every device busy and the progress bar moving
            call = {**call, "pool": self._start_pool(), "chunk_size": batch_size * 4}
            step = batch_size * 4 * len(self.devices)
            rows_of = [list(range(i, min(i + step, len(texts)))) for i in range(0, len(texts), step)]
        else:
            rows_of = batches(getattr(self.encoder, "model", None), texts, batch_size)
        out: np.ndarray | None = None
        for rows in rows_of:
            vecs = _as_numpy(self.encoder.encode(_loader([texts[i] for i in rows]), show_progress_bar=False, **call))
            if out is None:
                out = np.empty((len(texts), vecs.shape[1]), dtype=np.float32)
            out[rows] = vecs
            bar.update(len(rows))
        return out

    def _start_pool(self) -> dict[str, Any]:
        if self._pool is None:
            model = self.encoder.model
            logger.info("encoding on %s (sentence-transformers multi-process pool)", ", ".join(self.devices))
            self._pool = model.start_multi_process_pool(self.devices)
        return self._pool

    def close(self) -> None:
        """Stop the multi-process pool, if one was started."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            self.encoder.model.stop_multi_process_pool(pool)


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


def _loader(texts: list[str]) -> Any:
    """One batch as the DataLoader mteb's encoders take (the texts are already formatted by mteb)."""
    from datasets import Dataset
    from torch.utils.data import DataLoader

    return DataLoader(Dataset.from_dict({"text": texts}), batch_size=max(len(texts), 1))


def _as_numpy(vectors: Any) -> np.ndarray:
    if hasattr(vectors, "detach"):
        vectors = vectors.detach().float().cpu().numpy()
    return np.asarray(vectors, dtype=np.float32)


def text_key(prompt_type: Any, prompt: str, text: str) -> str:
    """A vector's key in the cache: its prompt type, the prompt text it got, and the text."""
    head = f"{getattr(prompt_type, 'value', prompt_type)}\0{prompt}\0"
    return hashlib.sha256((head + text).encode("utf-8")).hexdigest()


def cached_encoder(model: Any, output_folder: Path | None, stage: str | None = None) -> CachingEncoder:
    """The run's bi-encoder: on-disk cache under ``output_folder`` (None: in memory only)."""
    folder = model.fingerprint.embedding_cache_dir(output_folder) if output_folder is not None else None
    device = model.config.device
    return CachingEncoder(model.encoder, folder, stage=stage, devices=device if isinstance(device, list) else None,
                          region=model.region)
