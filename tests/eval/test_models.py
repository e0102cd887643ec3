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
    eval_cfg = {"tasks": [task], "limits": 400, "output_folder": str(tmp_path), "verbosity": 0}
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
