"""Model options: pooling modes, max_seq_length, dtypes, prompts, static models, e5 with prompts."""

from __future__ import annotations

import numpy as np
import pytest

from rag_eval.config import ModelConfig
from rag_eval.errors import ConfigError

TEXTS = ["A man is playing a guitar on stage.", "The weather is lovely today, let's go for a walk in the park."]


def _encode(cfg: ModelConfig, texts=TEXTS) -> np.ndarray:
    from rag_eval.resolve.models import build_sentence_transformer

    model = build_sentence_transformer(cfg, __import__("pathlib").Path(cfg.model_name_or_path))
    return np.asarray(model.encode(texts, convert_to_numpy=True))


@pytest.fixture(scope="module")
def pooled(minilm_path):
    modes = ("cls", "lasttoken", "max", "mean", "mean_sqrt_len_tokens", "weightedmean")
    return {m: _encode(ModelConfig(model_name_or_path=minilm_path, pooling_mode=m)) for m in modes}


def test_every_pooling_mode_builds_and_differs(pooled, minilm_st):
    for mode, emb in pooled.items():
        assert emb.shape == (2, 384), mode
        assert np.all(np.isfinite(emb)), mode
        # MiniLM's own stack ends with Normalize, so the rebuilt stack keeps it
        assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5), mode
    assert not np.allclose(pooled["mean"], pooled["cls"], atol=1e-3)
    assert not np.allclose(pooled["mean"], pooled["max"], atol=1e-3)
    # MiniLM's own pooling is mean: the rebuilt mean stack reproduces the model exactly
    own = minilm_st.encode(TEXTS, convert_to_numpy=True)
    assert np.allclose(pooled["mean"], own, atol=1e-5)
    # mean_sqrt_len differs from mean only by a per-text scale, which Normalize removes
    assert np.allclose(pooled["mean_sqrt_len_tokens"], own, atol=1e-5)


def test_max_seq_length_dtype_and_kwargs(minilm_path):
    import torch

    from rag_eval.resolve.models import build_sentence_transformer

    cfg = ModelConfig(model_name_or_path=minilm_path, max_seq_length=16, model_kwargs={"torch_dtype": "bfloat16"},
                      config_kwargs={"hidden_dropout_prob": 0.3})
    model = build_sentence_transformer(cfg, __import__("pathlib").Path(minilm_path))
    assert model.max_seq_length == 16
    assert next(model.parameters()).dtype == torch.bfloat16
    assert model[0].auto_model.config.hidden_dropout_prob == 0.3
    with pytest.raises(ConfigError, match="torch_dtype"):
        build_sentence_transformer(ModelConfig(model_name_or_path=minilm_path, model_kwargs={"torch_dtype": "int3"}),
                                   __import__("pathlib").Path(minilm_path))


def test_static_model2vec_folder_matches_model2vec(tmp_path, minilm_path, minilm_st):
    """A Model2Vec folder (here built from MiniLM's own token embeddings) loads as model_type static."""
    from model2vec import StaticModel
    from tokenizers import Tokenizer

    from rag_eval.resolve.models import load_bi_encoder

    vectors = minilm_st[0].auto_model.get_input_embeddings().weight.detach().numpy()
    tokenizer = Tokenizer.from_file(f"{minilm_path}/tokenizer.json")
    static = StaticModel(vectors=vectors, tokenizer=tokenizer, normalize=True)
    static.save_pretrained(str(tmp_path / "static-minilm"))

    loaded = load_bi_encoder(ModelConfig(model_name_or_path=str(tmp_path / "static-minilm"), model_type="static"))
    ours = loaded.encoder.model.encode(TEXTS, convert_to_numpy=True)
    ref = StaticModel.from_pretrained(str(tmp_path / "static-minilm")).encode(TEXTS)
    assert ours.shape == (2, 384)
    assert np.allclose(ours, ref, atol=1e-5)
    assert loaded.name == "static-minilm" and loaded.revision.startswith("local-")


def test_e5_scores_lcqmc_with_its_query_prompt(tmp_path, data_dir, e5_path, minilm_path):
    """multilingual-e5-small on LCQMC-zh through rag_eval, with e5's query prompt on both sides."""
    import mteb
    from mteb.models import SentenceTransformerEncoderWrapper
    from sentence_transformers import SentenceTransformer

    from rag_eval import run_task
    from rag_eval.config import load_config
    from rag_eval.resolve.tasks import resolve_task
    from rag_eval.stages.task_steps import prepare_task

    task = {"name": "LcqmcSTS", "type": "STS", "path": str(data_dir / "sts/lcqmc-zh")}
    eval_cfg = {"tasks": [task], "limits": 200, "output_folder": str(tmp_path), "verbosity": 0}
    prompts = {"LcqmcSTS": "query: "}
    e5 = run_task({"model": {"model_name_or_path": e5_path, "prompts": prompts}, "eval": eval_cfg})
    e5_plain = run_task({"model": {"model_name_or_path": e5_path, "name": "e5-noprompt"}, "eval": eval_cfg})
    minilm = run_task({"model": {"model_name_or_path": minilm_path}, "eval": eval_cfg})
    score = e5["LcqmcSTS"]["test"]["main_score"]
    # e5 reads Chinese; MiniLM sees mostly [UNK]
    assert 0.5 < score < 0.95
    assert score > minilm["LcqmcSTS"]["test"]["main_score"] + 0.2
    assert score != pytest.approx(e5_plain["LcqmcSTS"]["test"]["main_score"], abs=1e-4)  # the prompt was used

    ev = load_config({"model": {"model_name_or_path": e5_path}, "eval": eval_cfg}).eval
    ref_task = resolve_task(task, ev, "t")
    prepare_task(ref_task, ev)
    wrapper = SentenceTransformerEncoderWrapper(SentenceTransformer(e5_path))
    wrapper.model_prompts = prompts  # mteb drops prompt keys of tasks it does not know; set it directly
    ref = mteb.evaluate(wrapper, ref_task, cache=None, show_progress_bar=False, co2_tracker=False,
                        encode_kwargs={"batch_size": 32})
    assert score == pytest.approx(ref.task_results[0].scores["test"][0]["main_score"], abs=1e-6)


# --------------------------------------------------------------------------- a model's fingerprint, pinned
# The experiment name (result folder), the embedding / score cache folders and the result record's model block
# of representative configs, as the code before issue 25's fingerprint redesign wrote them: caches and result
# folders of earlier runs must still be found (a warm rerun stays warm), and result records read the same.


def _fingerprint_configs() -> dict[str, ModelConfig]:
    minilm = "sentence-transformers/all-MiniLM-L6-v2"
    hybrid = {"models": [ModelConfig(model_name_or_path=minilm, precision="fp16"),
                         ModelConfig(model_name_or_path="mteb/baseline-bm25s", model_type="bm25")],
              "fusion": "rrf", "weights": None, "rrf_k": 60, "sub_model_top_k": None}
    return {
        "plain": ModelConfig(model_name_or_path=minilm),
        "prompts": ModelConfig(model_name_or_path="intfloat/multilingual-e5-small", prompt="query: ",
                               prompts={"query": "query: ", "document": "passage: "}, pooling_mode="mean",
                               model_kwargs={"torch_dtype": "float16"}, config_kwargs={"attn": "sdpa"}),
        "fp16_dim": ModelConfig(model_name_or_path=minilm, precision="fp16", embed_dim=128, output_dtype="int8",
                                search_backend="faiss"),
        "int8": ModelConfig(model_name_or_path=minilm, precision="int8"),
        "onnx_len": ModelConfig(model_name_or_path=minilm, backend="onnx", max_seq_length=128),
        "normalize_off": ModelConfig(model_name_or_path=minilm, encode_kwargs={"normalize_embeddings": False,
                                                                                "batch_size": 8}),
        "api": ModelConfig(model_name_or_path="text-embedding-3-small", model_type="api",
                           model_name="text-embedding-3-small", api_base="http://127.0.0.1:7997/v1", dimensions=256,
                           api_key="secret", extra_body={"user": "x"}),
        "bm25": ModelConfig(model_name_or_path="mteb/baseline-bm25s", model_type="bm25",
                            model_kwargs={"tokenizer": "jieba", "k1": 1.2}),
        "hybrid": ModelConfig(model_name_or_path="hybrid", model_type="hybrid", hybrid=hybrid),
        "ce": ModelConfig(model_name_or_path="BAAI/bge-reranker-base", is_cross_encoder=True, max_seq_length=512),
        "ce_qwen3": ModelConfig(model_name_or_path="Qwen/Qwen3-Reranker-0.6B", is_cross_encoder=True,
                                reranker_format="qwen3", instruction="Judge relevance", precision="bf16",
                                prompts={"T2Reranking": "Rank"}),
        "ce_api": ModelConfig(model_name_or_path="rerank", model_type="api", is_cross_encoder=True,
                              model_name="bge-reranker", api_base="http://127.0.0.1:7997", rerank_schema="tei"),
    }


def _fingerprint_model(cfg: ModelConfig, name: str | None = None):
    """A LoadedModel as loading would make it, without loading anything (its encoder a stand-in)."""
    from pathlib import Path
    from types import SimpleNamespace

    from rag_eval.resolve.hub import ResolvedModel
    from rag_eval.resolve.loaded import LoadedModel
    from rag_eval.resolve.models import expected_name

    name = name or expected_name(cfg)
    prompts = {"query": cfg.prompts["query"], "document": cfg.prompts["document"]} if "query" in cfg.prompts else {}
    encoder = SimpleNamespace(model_prompts=prompts or None, model=None)  # as load_model leaves it
    parts = [_fingerprint_model(p) for p in cfg.hybrid.get("models", [])]
    resolved = ResolvedModel(model_id=cfg.model_name_or_path, path=Path(), revision="rev1", source="huggingface")
    return LoadedModel(encoder=encoder, config=cfg, resolved=resolved, name=name, revision="rev1", parts=parts,
                       reranker_format=(cfg.reranker_format if cfg.reranker_format != "auto" else "cross_encoder")
                       if cfg.is_cross_encoder else None)


def _fingerprint_values() -> dict[str, dict]:
    import hashlib
    import json
    from pathlib import Path

    import mteb

    from rag_eval.resolve.fingerprint import Fingerprint, experiment_name
    from rag_eval.stages.task_steps import result_extra

    out = {}
    for key, cfg in _fingerprint_configs().items():
        model = _fingerprint_model(cfg)
        task = mteb.get_task("T2Reranking" if cfg.is_cross_encoder else "T2Retrieval")
        extra = result_extra(model, task, "stage2" if cfg.is_cross_encoder else None, top_k=10)
        extra.pop("versions")
        values = {"name": model.name, "experiment": experiment_name(cfg), "variant": model.variant,
                  "record": hashlib.sha256(json.dumps(extra, sort_keys=True, default=str).encode()).hexdigest()[:16]}
        if cfg.is_cross_encoder:
            values["score_cache"] = model.fingerprint.score_cache_dir(Path("out")).as_posix()
        elif not cfg.is_search:
            values["embedding_cache"] = model.fingerprint.embedding_cache_dir(Path("out")).as_posix()
            # the dry run's look-up, before the model loads, finds the same folder
            before = Fingerprint(cfg, model.name, model.revision, prompts=model.encoder.model_prompts
                                 ).embedding_cache_dir(Path("out"))
            assert before.as_posix() == values["embedding_cache"], key
        out[key] = values
    return out


FINGERPRINTS: dict[str, dict] = {
    "plain": {
        "name": "sentence-transformers/all-MiniLM-L6-v2",
        "experiment": "",
        "variant": "",
        "record": "d5c95d33848b74f0",
        "embedding_cache": "out/.cache/embeddings/sentence-transformers__all-MiniLM-L6-v2/rev1/0af36420e4ad",
    },
    "prompts": {
        "name": "intfloat/multilingual-e5-small",
        "experiment": "",
        "variant": "",
        "record": "edf3579f102279f3",
        "embedding_cache": "out/.cache/embeddings/intfloat__multilingual-e5-small/rev1/a4890b87b707",
    },
    "fp16_dim": {
        "name": "sentence-transformers/all-MiniLM-L6-v2",
        "experiment": "dim128_int8_faiss_fp16",
        "variant": "dim128_int8_faiss_fp16",
        "record": "8a3d14af77408dba",
        "embedding_cache": "out/.cache/embeddings/sentence-transformers__all-MiniLM-L6-v2/rev1/0f43d51a123a",
    },
    "int8": {
        "name": "sentence-transformers/all-MiniLM-L6-v2",
        "experiment": "qint8",
        "variant": "qint8",
        "record": "3ad2ea02f1bcd449",
        "embedding_cache": "out/.cache/embeddings/sentence-transformers__all-MiniLM-L6-v2/rev1/ef25fd0c132e",
    },
    "onnx_len": {
        "name": "sentence-transformers/all-MiniLM-L6-v2",
        "experiment": "onnx",
        "variant": "onnx",
        "record": "ec7be52960813b3a",
        "embedding_cache": "out/.cache/embeddings/sentence-transformers__all-MiniLM-L6-v2/rev1/bbca3260613e",
    },
    "normalize_off": {
        "name": "sentence-transformers/all-MiniLM-L6-v2",
        "experiment": "",
        "variant": "",
        "record": "1b93b29bfc58a851",
        "embedding_cache": "out/.cache/embeddings/sentence-transformers__all-MiniLM-L6-v2/rev1/0af36420e4ad",
    },
    "api": {
        "name": "text-embedding-3-small",
        "experiment": "",
        "variant": "",
        "record": "1315ffb9d4054976",
        "embedding_cache": "out/.cache/embeddings/text-embedding-3-small/rev1/b14adb2d17de",
    },
    "bm25": {
        "name": "bm25s-jieba",
        "experiment": "",
        "variant": "",
        "record": "63cfc2690eec4d49",
    },
    "hybrid": {
        "name": "hybrid-rrf-all-MiniLM-L6-v2-fp16+bm25s",
        "experiment": "",
        "variant": "",
        "record": "cf99bfa18c560b3b",
    },
    "ce": {
        "name": "BAAI/bge-reranker-base",
        "experiment": "",
        "variant": "",
        "record": "62cf66f74f6d8a2b",
        "score_cache": "out/.cache/rerank_scores/BAAI__bge-reranker-base/rev1/2109c070b610",
    },
    "ce_qwen3": {
        "name": "Qwen/Qwen3-Reranker-0.6B",
        "experiment": "bf16",
        "variant": "bf16",
        "record": "c2ec11ae944f5afe",
        "score_cache": "out/.cache/rerank_scores/Qwen__Qwen3-Reranker-0.6B/rev1/7e131a3ee613",
    },
    "ce_api": {
        "name": "bge-reranker",
        "experiment": "",
        "variant": "",
        "record": "a9d62e9681a9f0c3",
        "score_cache": "out/.cache/rerank_scores/bge-reranker/rev1/92258d1c75cc",
    },
}


def test_fingerprints_of_earlier_runs_stay_the_same():
    """Experiment names, cache folders and result records of representative configs are those earlier runs wrote."""
    assert _fingerprint_values() == FINGERPRINTS
