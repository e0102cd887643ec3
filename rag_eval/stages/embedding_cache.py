"""An on-disk embedding cache in front of a bi-encoder: each unique text is encoded once.

mteb's ``CachedEmbeddingWrapper`` rebuilds its dataloader from rows that mteb has already
formatted, so a corpus document's title is prepended a second time and the scores change. This
cache works on the texts exactly as the model receives them instead, and keys each vector by
(prompt type, resolved prompt, text); the folder it lives in is keyed by the model and every
setting that changes a vector (see ``two_stage.embedding_cache_dir``).

Storage: ``chunk-NNNNN.npy`` (float32, ``allow_pickle=False``) + ``chunk-NNNNN.json`` (keys),
each written to a temp file and renamed, so a killed run leaves no half-written chunk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from rag_eval.resolve.models import safe_path_part

logger = logging.getLogger(__name__)


class EmbeddingCache:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.vectors: dict[str, np.ndarray] = {}
        self._chunks = 0
        self._load()

    def _load(self) -> None:
        if not self.folder.is_dir():
            return
        for keys_file in sorted(self.folder.glob("chunk-*.json")):
            vec_file = keys_file.with_suffix(".npy")
            try:
                keys = json.loads(keys_file.read_text(encoding="utf-8"))
                vecs = np.load(vec_file, allow_pickle=False)
            except (OSError, ValueError) as exc:
                logger.warning("skipping unreadable embedding chunk %s (%s)", keys_file, exc)
                continue
            if len(keys) != len(vecs):
                logger.warning("skipping embedding chunk %s: %d keys for %d vectors", keys_file, len(keys), len(vecs))
                continue
            self.vectors.update(zip(keys, vecs, strict=True))
            self._chunks += 1

    def add(self, keys: list[str], vectors: np.ndarray) -> None:
        vectors = np.asarray(vectors, dtype=np.float32)
        self.vectors.update(zip(keys, vectors, strict=True))
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = f"chunk-{os.getpid()}-{self._chunks:05d}"
        self._chunks += 1
        _atomic(self.folder / f"{stem}.npy", lambda fh: np.save(fh, vectors, allow_pickle=False), binary=True)
        _atomic(self.folder / f"{stem}.json", lambda fh: fh.write(json.dumps(keys)))


def _atomic(path: Path, write, binary: bool = False) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class CachingEncoder:
    """An mteb encoder that answers from :class:`EmbeddingCache` and encodes only new texts.

    Texts repeated within a call (a passage shared by queries, a sentence in several pairs) are
    encoded once too. ``texts_encoded`` counts the texts sent to the wrapped model.
    """

    def __init__(self, encoder: Any, folder: Path):
        self.encoder = encoder
        self.cache = EmbeddingCache(folder)
        self.texts_encoded = 0
        self.truncated = 0

    @property
    def mteb_model_meta(self) -> Any:
        return self.encoder.mteb_model_meta

    def similarity(self, a: Any, b: Any) -> Any:
        return self.encoder.similarity(a, b)

    def similarity_pairwise(self, a: Any, b: Any) -> Any:
        return self.encoder.similarity_pairwise(a, b)

    def _count_truncated(self, task: str, texts: list[str]) -> int:
        """Log how many texts exceed the model's max_seq_length (the model truncates them)."""
        model = getattr(self.encoder, "model", None)
        tokenizer, limit = getattr(model, "tokenizer", None), getattr(model, "max_seq_length", None)
        if tokenizer is None or not limit or not callable(tokenizer):
            return 0
        try:
            lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=True, verbose=False)["input_ids"]]
        except Exception:  # a tokenizer that cannot batch plain strings: nothing to report
            return 0
        over = sum(n > limit for n in lengths)
        if over:
            logger.warning("%s: %d of %d texts are longer than max_seq_length=%d tokens (longest %d) and are "
                           "truncated", task, over, len(texts), limit, max(lengths))
        self.truncated += over
        return over

    def _prompt(self, task_metadata: Any, prompt_type: Any) -> str:
        from mteb.models.abs_encoder import get_prompt_name

        prompts = getattr(self.encoder, "model_prompts", None) or {}
        name = get_prompt_name(prompts, task_metadata, prompt_type)
        return prompts.get(name, "") if name else ""

    def encode(self, inputs: Any, *, task_metadata: Any, hf_split: str, hf_subset: str,
               prompt_type: Any = None, **kwargs: Any) -> np.ndarray:
        from datasets import Dataset
        from torch.utils.data import DataLoader

        texts = [text for batch in inputs for text in batch["text"]]
        head = f"{getattr(prompt_type, 'value', prompt_type)}\0{self._prompt(task_metadata, prompt_type)}\0"
        keys = [hashlib.sha256((head + t).encode("utf-8")).hexdigest() for t in texts]
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in self.cache.vectors:
                missing.setdefault(key, text)
        if missing and len(missing) == len(set(keys)):
            # nothing cached: encode mteb's own batches, so the vectors are exactly mteb's
            # (padding differs with batch composition, and threshold metrics feel float noise)
            self._count_truncated(task_metadata.name, list(missing.values()))
            new = self.encoder.encode(inputs, task_metadata=task_metadata, hf_split=hf_split, hf_subset=hf_subset,
                                      prompt_type=prompt_type, **kwargs)
            if hasattr(new, "detach"):
                new = new.detach().float().cpu().numpy()
            new = np.asarray(new)
            first = {k: i for i, k in reversed(list(enumerate(keys)))}
            self.cache.add(list(first), new[list(first.values())])
            self.texts_encoded += len(texts)
            return new
        if missing:
            self._count_truncated(task_metadata.name, list(missing.values()))
            batch_size = kwargs.get("batch_size", 32)
            # the texts are already formatted by mteb (title + text, query + instruction): pass them as they are
            loader = DataLoader(Dataset.from_dict({"text": list(missing.values())}), batch_size=batch_size)
            new = self.encoder.encode(loader, task_metadata=task_metadata, hf_split=hf_split, hf_subset=hf_subset,
                                      prompt_type=prompt_type, **kwargs)
            if hasattr(new, "detach"):
                new = new.detach().float().cpu().numpy()
            self.cache.add(list(missing), np.asarray(new))
            self.texts_encoded += len(missing)
        logger.debug("%s: %d texts, %d encoded, %d from cache", task_metadata.name, len(texts), len(missing),
                     len(texts) - len(missing))
        return np.stack([self.cache.vectors[k] for k in keys]) if keys else np.zeros((0, 0), dtype=np.float32)


def embedding_cache_dir(output_folder: Path, model: Any) -> Path:
    """Where a bi-encoder's embeddings are cached: one folder per model and encoding settings.

    Everything that changes a vector is in the key: model, revision, pooling, prompts,
    max_seq_length, dtype and model type; each vector's own key holds its prompt and text.
    """
    cfg = model.config
    settings = {
        "model": model.name,
        "revision": model.revision,
        "model_type": cfg.model_type,
        "pooling_mode": cfg.pooling_mode,
        "prompt": cfg.prompt,
        "prompts": getattr(model.encoder, "model_prompts", None),
        "max_seq_length": cfg.max_seq_length,
        "model_kwargs": {k: str(v) for k, v in sorted(cfg.model_kwargs.items())},
        "config_kwargs": {k: str(v) for k, v in sorted(cfg.config_kwargs.items())},
    }
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return (Path(output_folder) / ".cache" / "embeddings" / safe_path_part(model.name)
            / safe_path_part(model.revision) / digest)


def cached_encoder(model: Any, output_folder: Path) -> CachingEncoder:
    return CachingEncoder(model.encoder, embedding_cache_dir(output_folder, model))
