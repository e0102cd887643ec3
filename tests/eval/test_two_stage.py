"""Two-stage: MiniLM retrieves top_k on Cranfield, the ms-marco cross-encoder reranks them."""

from __future__ import annotations

import json

import numpy as np
import pytest

LIMITS, TOP_K = 8, 10
CORPUS = 100  # Cranfield documents kept of 1,400 (each query's judged ones among them)


def _cfg(minilm_path, reranker_path, data_dir, out):
    """The seed's two-stage EvalScope dict, local paths in place of hub ids."""
    return {
        "eval_backend": "RAGEval",
        "eval_config": {
            "tool": "MTEB",
            "model": [
                {"model_name_or_path": minilm_path, "is_cross_encoder": False, "max_seq_length": 512, "prompt": "",
                 "model_kwargs": {"torch_dtype": "auto"}, "encode_kwargs": {"batch_size": 64}},
                {"model_name_or_path": reranker_path, "is_cross_encoder": True, "max_seq_length": 512,
                 "prompt": "", "model_kwargs": {"torch_dtype": "auto"}, "encode_kwargs": {"batch_size": 32}},
            ],
            "eval": {"tasks": [{"name": "Cranfield", "type": "Retrieval",
                                "path": str(data_dir / "retrieval/cranfield-en")},
                               {"name": "AtecPairs", "type": "PairClassification",
                                "path": str(data_dir / "pair_classification/atec-zh")}],
                     "verbosity": 0, "overwrite_results": True, "limits": LIMITS, "corpus_size": CORPUS,
                     "top_k": TOP_K,
                     "output_folder": str(out)},
        },
    }


@pytest.fixture(scope="module")
def two_stage(tmp_path_factory, minilm_path, reranker_path, data_dir):
    from rag_eval import run_task

    out = tmp_path_factory.mktemp("two")
    cfg = _cfg(minilm_path, reranker_path, data_dir, out)
    return cfg, run_task(cfg), out


def _predictions(outcome):
    path = outcome.path.parent / "predictions" / "Cranfield_predictions.json"
    return json.loads(path.read_text())["default"]["test"]


def test_stage2_reranks_exactly_stage1_top_k(two_stage):
    _, scores, _ = two_stage
    assert scores.ok, scores.failed
    s1, s2 = (next(o for o in scores.outcomes if o.task == "Cranfield" and o.stage == st)
              for st in ("stage1", "stage2"))
    first, second = _predictions(s1), _predictions(s2)
    assert len(first) == len(second) == LIMITS
    for qid, ranked in first.items():
        top = sorted(ranked, key=lambda d: ranked[d], reverse=True)[:TOP_K]
        assert set(second[qid]) == set(top), qid
    m1, m2 = scores["Cranfield"]["stage1"]["test"], scores["Cranfield"]["stage2"]["test"]
    assert m2[f"recall_at_{TOP_K}"] == m1[f"recall_at_{TOP_K}"]
    assert m2["ndcg_at_10"] != m1["ndcg_at_10"]  # the reranker really reordered
    # other task types run once, with the bi-encoder only
    assert set(scores["AtecPairs"]) == {"stage1"}
    # result files: stage 2 names its stage-1 model, and is filed under it
    extra = json.loads(s2.path.read_text())["rag_eval"]
    assert extra["stage1_model"] == s1.model and extra["top_k"] == TOP_K
    assert s1.path.parts[-4] == "stage1" and "stage2" in s2.path.parts and "experiments" in s2.path.parts


def test_stage2_equals_mteb_rerank_flow(two_stage, tmp_path, minilm_path, reranker_path, data_dir):
    import mteb
    from sentence_transformers import CrossEncoder, SentenceTransformer

    from rag_eval.config import load_config
    from rag_eval.resolve.tasks import resolve_task
    from rag_eval.stages.task_steps import prepare_task

    cfg, scores, _ = two_stage
    ev = load_config(cfg).eval
    task = resolve_task(ev.tasks[0], ev, "t")
    prepare_task(task, ev)
    bi = SentenceTransformer(minilm_path)
    bi.max_seq_length = 512  # as configured in the EvalScope dict
    mteb.evaluate(bi, task, cache=None, prediction_folder=tmp_path, encode_kwargs={"batch_size": 64},
                  show_progress_bar=False, co2_tracker=False)
    task.convert_to_reranking(tmp_path, top_k=TOP_K)
    ref = mteb.evaluate(CrossEncoder(reranker_path, max_length=512), task, cache=None, show_progress_bar=False,
                        co2_tracker=False, encode_kwargs={"batch_size": 32})
    ref_scores = ref.task_results[0].scores["test"][0]
    ours = scores["Cranfield"]["stage2"]["test"]
    for metric in ("ndcg_at_10", "map_at_10", "mrr_at_10", f"recall_at_{TOP_K}"):
        assert ours[metric] == pytest.approx(ref_scores[metric], abs=1e-6), metric


class CosineCrossEncoder:
    """A 'cross-encoder' that scores a pair by the bi-encoder's own cosine: a plumbing check."""

    def __init__(self, st):
        from mteb.models.model_meta import ModelMeta

        self.st = st
        self.mteb_model_meta = ModelMeta.create_empty(overwrites={"name": "cosine-ce", "revision": "1"})

    def predict(self, inputs1, inputs2, *, task_metadata, hf_split, hf_subset, prompt_type=None, **kwargs):
        q = [t for batch in inputs1 for t in batch["text"]]
        d = [t for batch in inputs2 for t in batch["text"]]
        qe = self.st.encode(q, convert_to_numpy=True, batch_size=64)
        de = self.st.encode(d, convert_to_numpy=True, batch_size=64)
        return np.sum(qe * de, axis=1)


def test_cosine_reranker_reproduces_stage1_and_stage2_never_encodes(tmp_path, two_stage, minilm_st, monkeypatch):
    from rag_eval.config import ModelConfig, load_config
    from rag_eval.resolve.hub import ResolvedModel
    from rag_eval.resolve.models import LoadedModel, load_bi_encoder
    from rag_eval.resolve.tasks import resolve_tasks
    from rag_eval.stages import rerank_stage as ts
    from rag_eval.stages.runner import run_two_stage
    from rag_eval.stages.task_steps import prepare_task

    cfg, _, _ = two_stage
    run = load_config(cfg)
    ev = run.eval
    ev.output_folder = str(tmp_path)
    ev.tasks = ev.tasks[:1]
    run.bi_encoder.max_seq_length = None  # the model's own 256 tokens, as minilm_st uses
    bi = load_bi_encoder(run.bi_encoder)
    fake = LoadedModel(encoder=CosineCrossEncoder(minilm_st), config=ModelConfig(model_name_or_path="cosine"),
                       resolved=ResolvedModel("cosine", tmp_path, "1", "local"), name="cosine-ce", revision="1")

    calls = {"encode": 0, "in_stage2": 0}
    real_encode, real_rerank = bi.encoder.encode, ts._rerank

    def counting_encode(inputs, **k):  # counts texts sent to the model (rag_eval sends one batch per call)
        calls["encode"] += len(inputs.dataset)
        return real_encode(inputs, **k)

    def rerank_watch(*a, **k):
        before = calls["encode"]
        out = real_rerank(*a, **k)
        calls["in_stage2"] += calls["encode"] - before
        return out

    monkeypatch.setattr(bi.encoder, "encode", counting_encode)
    monkeypatch.setattr(ts, "_rerank", rerank_watch)
    outcomes = run_two_stage(bi, fake, resolve_tasks(ev), ev, tmp_path)
    s1, s2 = (o.scores["test"] for o in outcomes)
    task = resolve_tasks(ev)[0]
    prepare_task(task, ev)  # the same sample stage 1 saw
    split = task.dataset["default"]["test"]
    unique = len(set(split["queries"]["text"])) + len({f"{t} {x}".strip() for t, x in
                                                        zip(split["corpus"]["title"], split["corpus"]["text"],
                                                            strict=True)})
    assert calls["encode"] == unique and calls["in_stage2"] == 0  # each unique query and document once
    for k in (1, 3, 5, 10):
        for metric in ("ndcg", "map", "recall", "precision"):
            assert s2[f"{metric}_at_{k}"] == pytest.approx(s1[f"{metric}_at_{k}"], abs=1e-5), (metric, k)

    # a rerun reuses the cached embeddings: the bi-encoder encodes nothing
    calls["encode"] = 0
    run_two_stage(bi, fake, resolve_tasks(ev), ev, tmp_path)
    assert calls["encode"] == 0
