"""``eval.limits`` / ``eval.corpus_size`` on cranfield-en with MiniLM, through ``rag_eval.run_task``
(the sampling itself is pinned down in tests/unit/test_sampling.py, whose helpers and constants these use).

``limits`` gives an ndcg@10 close to the full run, while the EvalScope way (corpus shrunk to the
judged documents) inflates it. So that the corpus is encoded once and not once per run (2 CPU cores),
``SentenceTransformer.encode`` is memoised per text for the module fixture: every run still encodes
through rag_eval's and mteb's own code, it only gets the same vectors back for a text it has already seen.
"""

from __future__ import annotations

import pytest

from tests.conftest import local_task
from tests.unit.test_sampling import (
    CRANFIELD,
    CRANFIELD_DOCS,
    CRANFIELD_QUERIES,
    LIMITED,
    MIN_INFLATION,
    NDCG_TOLERANCE,
    SEED,
    _prepared,
)

# ---------------------------------------------------------------------------------------------
# 3 + 4. scores on cranfield-en with MiniLM


class _MemoEncode:
    """``SentenceTransformer.encode`` memoised per (text, options): each text is encoded once."""

    def __init__(self, encode):
        self.encode, self.vectors, self.computed, self.reused = encode, {}, 0, 0

    def __call__(self, model, inputs=None, *args, **kwargs):
        import numpy as np

        if args or not isinstance(inputs, list) or not all(isinstance(t, str) for t in inputs):
            return self.encode(model, inputs, *args, **kwargs)
        options = repr(sorted((k, repr(v)) for k, v in kwargs.items() if k not in {"batch_size", "show_progress_bar"}))
        missing = list(dict.fromkeys(t for t in inputs if (t, options) not in self.vectors))
        if missing:
            out = self.encode(model, missing, **kwargs)
            if not isinstance(out, np.ndarray) or out.ndim != 2:
                return self.encode(model, inputs, **kwargs)
            self.vectors.update({(t, options): v for t, v in zip(missing, out, strict=True)})
        self.computed += len(missing)
        self.reused += len(inputs) - len(missing)
        return np.stack([self.vectors[(t, options)] for t in inputs])


@pytest.fixture(scope="module")
def cranfield(tmp_path_factory, data_dir, minilm_path):
    from sentence_transformers import SentenceTransformer

    from rag_eval import run_task
    from rag_eval.config import load_config
    from rag_eval.resolve.models import load_bi_encoder
    from rag_eval.stages.task_steps import evaluate_task

    out = tmp_path_factory.mktemp("sampling-out")
    entry = local_task("Cranfield", "Retrieval", data_dir / CRANFIELD)

    def cfg(limits, corpus_size):
        return {
            "model": {"model_name_or_path": minilm_path, "name": "minilm", "encode_kwargs": {"batch_size": 32},
                      "max_seq_length": 128},  # the whole corpus is encoded: its documents cut at 128 tokens
            "eval": {
                "tasks": [entry],
                "limits": limits,
                "corpus_size": corpus_size,
                "seed": SEED,
                "output_folder": str(out),
                "verbosity": 0,
            },
        }

    def ndcg(scores):
        assert scores.ok, scores.failed
        return scores["Cranfield"]["test"]["ndcg_at_10"]

    memo = _MemoEncode(SentenceTransformer.encode)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(SentenceTransformer, "encode", lambda self, *a, **k: memo(self, *a, **k))
        full = run_task(cfg(None, None))
        limited = run_task(cfg(LIMITED, None))
        limited_full_corpus = run_task(cfg(LIMITED, CRANFIELD_DOCS))

        # the EvalScope way, by hand: the same 100 queries, the corpus cut to their judged docs
        run = load_config(cfg(LIMITED, None))
        task, _, data = _prepared(entry, limits=LIMITED)
        judged = {d for rel in data["relevant_docs"].values() for d in rel}
        data["corpus"] = data["corpus"].select([i for i, d in enumerate(data["corpus"]["id"]) if d in judged])
        judged_only = evaluate_task(load_bi_encoder(run.bi_encoder), task, run.eval)

    return {
        "full": ndcg(full),
        "limited": ndcg(limited),
        "limited_full_corpus": ndcg(limited_full_corpus),
        "judged_only": judged_only.scores["test"][0]["ndcg_at_10"],
        "judged_only_docs": len(data["corpus"]),
        "judged_docs": len(judged),
        "samples": {
            name: s.outcomes[0].sample
            for name, s in (("full", full), ("limited", limited), ("limited_full_corpus", limited_full_corpus))
        },
        "memo": memo,
    }


def test_corpus_size_equal_to_corpus_changes_nothing(cranfield):
    samples = cranfield["samples"]
    assert samples["limited_full_corpus"]["corpus"] == samples["limited"]["corpus"] == CRANFIELD_DOCS
    assert cranfield["limited_full_corpus"] == cranfield["limited"]  # exactly
    assert cranfield["memo"].reused > 0 and cranfield["memo"].computed >= CRANFIELD_DOCS


def test_limits_score_close_to_full_run_not_inflated(cranfield):
    samples = cranfield["samples"]
    whole = {"queries": CRANFIELD_QUERIES, "queries_total": CRANFIELD_QUERIES, "corpus": CRANFIELD_DOCS,
             "corpus_total": CRANFIELD_DOCS}  # the sizes are recorded without limits too
    assert samples["full"] == {"seed": SEED, "limits": None, "corpus_size": None, **whole,
                               "splits": {"test": whole}}
    limited = {"queries": LIMITED, "queries_total": CRANFIELD_QUERIES, "corpus": CRANFIELD_DOCS,
               "corpus_total": CRANFIELD_DOCS}
    assert samples["limited"] == {"seed": SEED, "limits": LIMITED, "corpus_size": None, **limited,
                                  "splits": {"test": limited}}
    full, limited = cranfield["full"], cranfield["limited"]
    assert 0.30 < full < 0.45, full  # MiniLM on cranfield: 0.3817 at 256 tokens; 100 queries 0.3849 at 128
    assert abs(limited - full) <= NDCG_TOLERANCE, (limited, full)


def test_judged_only_corpus_would_inflate_the_score(cranfield):
    # documents the EvalScope way keeps: only the judged ones, less than half the corpus
    assert cranfield["judged_only_docs"] == cranfield["judged_docs"] < CRANFIELD_DOCS / 2
    ours, inflated = cranfield["limited"], cranfield["judged_only"]
    assert inflated - ours > MIN_INFLATION, (inflated, ours)
    assert inflated - cranfield["full"] > MIN_INFLATION
