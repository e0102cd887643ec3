"""How rag_eval runs the bi-encoder: exact batches, deduplication, progress bars, device pools."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

TEXTS = 150


@pytest.fixture(scope="module")
def docs(data_dir):
    """Real Cranfield documents (varied lengths), no repeats."""
    rows = [json.loads(line) for line in (data_dir / "retrieval/cranfield-en/corpus.jsonl").open(encoding="utf-8")]
    texts = list(dict.fromkeys(f"{r['title']} {r['text']}".strip() for r in rows))
    return texts[:TEXTS]


@pytest.fixture(scope="module")
def wrapper(minilm_st):
    import mteb

    return mteb.models.SentenceTransformerEncoderWrapper(minilm_st)


@pytest.fixture(scope="module")
def reference(wrapper, docs):
    """mteb's own vectors of ``docs`` (one call, its batches): what every cached path must give back."""
    return _encode(wrapper, docs, show_progress_bar=False)


def _meta(name="CranfieldDocs"):
    import mteb

    return mteb.get_task("NFCorpus").metadata.model_copy(update={"name": name})


def _loader(texts, batch_size=32):
    from datasets import Dataset
    from torch.utils.data import DataLoader

    return DataLoader(Dataset.from_dict({"text": texts}), batch_size=batch_size)


def _encode(encoder, texts, name="CranfieldDocs", **kwargs):
    from mteb.types import PromptType

    return np.asarray(encoder.encode(_loader(texts), task_metadata=_meta(name), hf_split="test", hf_subset="default",
                                     prompt_type=PromptType.document, batch_size=32, **kwargs))


def test_cold_call_is_bit_identical_to_mteb(wrapper, docs, reference, tmp_path):
    """Per-batch calls in sentence-transformers' own order give exactly mteb's one-call vectors."""
    from rag_eval.stages.embedding_cache import CachingEncoder

    ours = CachingEncoder(wrapper, tmp_path / "cache")
    got = _encode(ours, docs)
    want = reference
    assert got.shape == (TEXTS, 384)
    assert np.array_equal(got, want)
    assert ours.texts_encoded == TEXTS
    # the rows really are in input order, not in batch (length) order
    assert not np.array_equal(got, want[np.argsort([-len(t) for t in docs])])


def test_repeats_are_encoded_once_and_get_one_vector(wrapper, docs, reference, tmp_path):
    from rag_eval.stages.embedding_cache import CachingEncoder

    order = [*range(60), *range(30), *range(60, 90)]  # 120 texts, 90 unique
    texts = [docs[i] for i in order]
    ours = CachingEncoder(wrapper, tmp_path / "cache")
    got = _encode(ours, texts)
    assert ours.texts_encoded == 90
    assert np.array_equal(got[:30], got[60:90])  # a repeat is the same vector, not a re-encoding
    np.testing.assert_allclose(got, reference[order], atol=1e-5)
    # a second call (another task, a rerun) encodes nothing; a memory-only cache behaves the same
    again = CachingEncoder(wrapper, tmp_path / "cache")
    assert np.array_equal(_encode(again, texts), got) and again.texts_encoded == 0
    memory = CachingEncoder(wrapper, None)
    assert np.array_equal(_encode(memory, texts), got) and memory.texts_encoded == 90
    assert len(list((tmp_path / "cache").glob("chunk-*.npy"))) == 1 and memory.cache.folder is None


def test_progress_bar_names_task_and_stage(wrapper, docs, tmp_path, capsys):
    from rag_eval.stages.embedding_cache import CachingEncoder

    ours = CachingEncoder(wrapper, None, stage="stage1")
    _encode(ours, docs[:40], name="T2Retrieval", show_progress_bar=True)
    err = capsys.readouterr().err
    assert "T2Retrieval · stage1 · encode documents" in err
    assert "40/40" in err
    _encode(CachingEncoder(wrapper, None, stage="stage1"), docs[:40], show_progress_bar=False)
    assert capsys.readouterr().err == ""


def test_reranking_progress_counts_pairs_and_keeps_scores(reranker_path, capsys):
    from mteb.models.sentence_transformer_wrapper import CrossEncoderWrapper
    from mteb.types import PromptType
    from sentence_transformers import CrossEncoder

    from rag_eval.stages.reranking import LengthSortedCrossEncoder

    inner = CrossEncoderWrapper(CrossEncoder(reranker_path, device="cpu", local_files_only=True))
    queries = ["what is boundary layer flow"] * 5 + ["heat transfer in hypersonic flow"] * 5
    docs = [f"document {i} about {'boundary layers' if i % 2 else 'heat transfer'} at mach {i}" for i in range(10)]
    call = {"task_metadata": _meta("CranfieldRerank"), "hf_split": "test", "hf_subset": "default",
            "prompt_type": PromptType.document, "batch_size": 4}
    want = inner.predict(_loader(queries, 4), _loader(docs, 4), show_progress_bar=False, **call)
    got = LengthSortedCrossEncoder(inner, stage="stage2").predict(_loader(queries, 4), _loader(docs, 4),
                                                             show_progress_bar=True, **call)
    # mteb scores dataloader batches in data order; rag_eval the batches of one length-sorted
    # predict call: the same scores up to float noise, and exactly one predict call's
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert got.shape == (10,) and len(set(np.round(got, 4))) > 5
    pairs = [(q, d) for q, d in zip(queries, docs, strict=True)]
    assert np.array_equal(got, inner.model.predict(pairs, batch_size=4, show_progress_bar=False))
    err = capsys.readouterr().err
    assert "CranfieldRerank · stage2 · rerank" in err and "10/10" in err


def test_device_list_config(minilm_path):
    from rag_eval.config import load_config
    from rag_eval.errors import ConfigError

    run = load_config({"model": {"model_name_or_path": minilm_path, "device": ["cpu", "cpu"]},
                       "eval": {"tasks": ["ATEC"]}})
    assert run.bi_encoder.device == ["cpu", "cpu"]
    with pytest.raises(ConfigError, match=r"model\[0\]\.device must be a device name"):
        load_config({"model": {"model_name_or_path": minilm_path, "device": ["cpu", 3]}, "eval": {"tasks": ["ATEC"]}})
    with pytest.raises(ConfigError, match=r"model\[1\]\.device is a list: a cross-encoder runs on one device"):
        load_config({"model": [{"model_name_or_path": minilm_path},
                               {"model_name_or_path": minilm_path, "is_cross_encoder": True,
                                "device": ["cuda:0", "cuda:1"]}], "eval": {"tasks": ["ATEC"]}})


def test_device_list_encodes_through_a_pool_that_stops(minilm_path, docs, reference):
    """``device: [cpu, cpu]``: two worker processes (sentence-transformers' pool), same vectors."""
    from rag_eval.config import load_config
    from rag_eval.resolve.models import load_bi_encoder
    from rag_eval.stages.embedding_cache import cached_encoder

    run = load_config({"model": {"model_name_or_path": minilm_path, "device": ["cpu", "cpu"]},
                       "eval": {"tasks": ["ATEC"]}})
    model = load_bi_encoder(run.bi_encoder)
    encoder = cached_encoder(model, None, stage="one-stage")
    try:
        got = _encode(encoder, docs[:100])
        pool = encoder._pool
        assert pool is not None and len(pool["processes"]) == 2
        assert all(p.is_alive() for p in pool["processes"])
        pids = [p.pid for p in pool["processes"]]
    finally:
        encoder.close()
    assert encoder._pool is None
    for pid in pids:  # the workers are gone (joined and reaped), not left running
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    np.testing.assert_allclose(got, reference[:100], atol=1e-5)
    assert encoder.texts_encoded == 100


def test_cache_keeps_keys_in_memory_and_vectors_on_disk(wrapper, docs, reference, tmp_path):
    """A cold call's vectors go to disk, not into memory (the caller holds the one copy); a hit reads its
    chunk; a cache opened on the folder reads only the keys until a lookup needs a chunk."""
    from rag_eval.stages.embedding_cache import CachingEncoder

    ours = CachingEncoder(wrapper, tmp_path / "cache")
    cold = _encode(ours, docs[:60])
    assert (len(ours.cache), ours.cache.in_memory) == (60, 0)
    cold[:] = 0.0  # the caller's array is its own: the cache is not changed through it
    mixed = _encode(ours, docs[:30] + docs[60:90])  # 30 hits (their chunk is read whole), 30 new
    assert ours.texts_encoded == 90 and (len(ours.cache), ours.cache.in_memory) == (90, 60)
    want = reference[:90]  # mteb's vectors in other batches: equal to float noise (padding)
    np.testing.assert_allclose(mixed, np.concatenate([want[:30], want[60:90]]), atol=1e-5)
    opened = CachingEncoder(wrapper, tmp_path / "cache")
    assert (len(opened.cache), opened.cache.in_memory) == (90, 0)
    assert np.array_equal(_encode(opened, docs[60:90]), mixed[30:]) and opened.texts_encoded == 0
    assert opened.cache.in_memory == 30  # only the second chunk was read
