"""LLM rerankers scored as their authors score them, on tiny random-weight stand-ins (tests/llm_standins.py).

Each family's scores through rag_eval (``run_task`` with an EvalScope dict: MiniLM retrieves, the stand-in
reranks) equal its reference recipe on the same pairs to 1e-5 in float32: mteb's ``Qwen3RerankerWrapper``
for Qwen3-Reranker (and its sequence-classification conversion), FlagEmbedding's documented format
re-built here pair by pair for bge-reranker-v2-gemma. Folders rag_eval cannot score as their authors do
are refused in one line before any model loads.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

LIMITS, TOP_K, MAX_LEN = 10, 5, 192
CARD = "Given a web search query, retrieve relevant passages that answer the query"


@pytest.fixture(scope="session")
def standins(tmp_path_factory, data_dir):
    from tests.llm_standins import build_standins

    return build_standins(tmp_path_factory.mktemp("llm-standins"), data_dir)


def _cfg(minilm_path, reranker: dict, data_dir, out) -> dict:
    return {
        "eval_backend": "RAGEval",
        "eval_config": {
            "tool": "MTEB",
            "model": [
                {"model_name_or_path": minilm_path, "is_cross_encoder": False, "max_seq_length": 256,
                 "encode_kwargs": {"batch_size": 64}},
                {"is_cross_encoder": True, "max_seq_length": MAX_LEN, "model_kwargs": {"torch_dtype": "float32"},
                 "encode_kwargs": {"batch_size": 4}, **reranker},
            ],
            "eval": {"tasks": [{"name": "Cmrc", "type": "Retrieval", "path": str(data_dir / "retrieval/cmrc2018-zh")}],
                     "verbosity": 0, "overwrite_results": True, "limits": LIMITS, "corpus_size": 60, "top_k": TOP_K,
                     "output_folder": str(out)},
        },
    }


def _stage(scores, stage):
    return next(o for o in scores.outcomes if o.task == "Cmrc" and o.stage == stage)


def _predictions(path):
    return json.loads(path.read_text())["default"]["dev"]


def _reference(cfg, scorer, stage1, tmp_path):
    """mteb's own rerank flow on the same candidates with ``scorer`` (a CrossEncoderProtocol): its scores."""
    import mteb

    from rag_eval.config import load_config
    from rag_eval.resolve.tasks import resolve_task
    from rag_eval.stages.task_steps import prepare_task

    ev = load_config(cfg).eval
    task = resolve_task(ev.tasks[0], ev, "t")
    prepare_task(task, ev)
    task.convert_to_reranking(stage1.path.parent / "predictions", top_k=TOP_K)
    mteb.evaluate(scorer, task, cache=None, prediction_folder=tmp_path, show_progress_bar=False, co2_tracker=False,
                  encode_kwargs={"batch_size": 3})
    return _predictions(tmp_path / task.prediction_file_name)


def _assert_same(ours, ref):
    assert ours.keys() == ref.keys() and len(ours) == LIMITS
    a = np.array([ours[q][d] for q in ours for d in sorted(ours[q])])
    b = np.array([ref[q][d] for q in ours for d in sorted(ours[q])])
    assert len(a) == LIMITS * TOP_K
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)
    assert np.unique(a).size > len(a) // 2  # real, varied scores


class _Qwen3Card:
    """mteb's Qwen3RerankerWrapper with the model card's instruction (mteb's own default differs)."""

    def __new__(cls, folder, max_length):
        from mteb.models.model_implementations.qwen3_reranker import Qwen3RerankerWrapper
        from mteb.models.model_meta import ModelMeta

        wrapper = Qwen3RerankerWrapper(str(folder), device="cpu", max_length=max_length)
        base = Qwen3RerankerWrapper.format_instruction
        wrapper.format_instruction = lambda instruction, q, d: base(instruction or CARD, q, d)
        wrapper.mteb_model_meta = ModelMeta.create_empty(overwrites={"name": "ref-qwen3", "revision": "1"})
        return wrapper


@pytest.mark.slow
@pytest.mark.parametrize("family", ["qwen3", "qwen3_seq_cls"])
def test_qwen3_reranker_equals_mteb_wrapper(family, standins, minilm_path, data_dir, tmp_path):
    """Qwen3-Reranker as released (auto: the folder's id) and its sequence-classification conversion
    (reranker_format: qwen3 named) score what mteb's wrapper scores on the causal model."""
    from rag_eval import run_task

    reranker = {"model_name_or_path": str(standins[family])}
    if family == "qwen3_seq_cls":
        reranker["reranker_format"] = "qwen3"
    cfg = _cfg(minilm_path, reranker, data_dir, tmp_path / "out")
    scores = run_task(cfg)
    assert scores.ok, scores.failed
    s1, s2 = _stage(scores, "stage1"), _stage(scores, "stage2")
    extra = json.loads(s2.path.read_text())["rag_eval"]
    assert extra["reranker"]["format"] == "qwen3" and extra["reranker"]["instruction"] == CARD
    assert not extra["reranker"]["ties"]["mostly_tied"]
    ours = _predictions(s2.path.parent / "predictions" / "Cmrc_predictions.json")
    ref = _reference(cfg, _Qwen3Card(standins["qwen3"], MAX_LEN), s1, tmp_path / "ref")
    _assert_same(ours, ref)


class FlagReference:
    """FlagEmbedding's decoder-only reranker format, written here from its documentation, one pair at a time
    (no padding): "A: "+query (at most 3/4 of max_length tokens), "\\n", "B: "+passage, "\\n", the prompt;
    the raw logit of "Yes" at the last token."""

    PROMPT = ("Given a query A and a passage B, determine whether the passage contains an answer to the query by "
              "providing a prediction of either 'Yes' or 'No'.")

    def __init__(self, folder, max_length=512):
        from mteb.models.model_meta import ModelMeta
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(str(folder))
        self.model = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
        self.max_length = max_length
        self.mteb_model_meta = ModelMeta.create_empty(overwrites={"name": "ref-flag", "revision": "1"})

    def ids(self, query, passage):
        tok = self.tok
        sep = tok("\n", add_special_tokens=False)["input_ids"]
        prompt = tok(self.PROMPT, add_special_tokens=False)["input_ids"]
        q = tok("A: " + query, add_special_tokens=False, truncation=True, max_length=self.max_length * 3 // 4)
        p = tok("B: " + passage, add_special_tokens=False, truncation=True, max_length=self.max_length)
        first, second = [tok.bos_token_id] + q["input_ids"], sep + p["input_ids"]
        # prepare_for_model(truncation="only_second") to max_length + separator + prompt (transformers 5 has no
        # prepare_for_model on fast tokenizers): the passage side loses its last tokens until the pair fits
        room = self.max_length + len(sep) + len(prompt) - len(first)
        return first + second[:room] + sep + prompt

    def predict(self, inputs1, inputs2, **kwargs):
        import torch

        queries = [t for b in inputs1 for t in b["text"]]
        passages = [t for b in inputs2 for t in b["text"]]
        yes = self.tok("Yes", add_special_tokens=False)["input_ids"][0]
        out = []
        with torch.no_grad():
            for q, p in zip(queries, passages, strict=True):
                logits = self.model(input_ids=torch.tensor([self.ids(q, p)])).logits
                out.append(float(logits[0, -1, yes]))
        return np.array(out)


@pytest.mark.slow
def test_bge_reranker_gemma_equals_flag_format(standins, minilm_path, data_dir, tmp_path):
    """bge-reranker-v2-gemma (auto: flag_llm) scores the raw "Yes" logit of FlagEmbedding's format."""
    from rag_eval import run_task

    cfg = _cfg(minilm_path, {"model_name_or_path": str(standins["gemma"])}, data_dir, tmp_path / "out")
    scores = run_task(cfg)
    assert scores.ok, scores.failed
    s1, s2 = _stage(scores, "stage1"), _stage(scores, "stage2")
    assert json.loads(s2.path.read_text())["rag_eval"]["reranker"]["format"] == "flag_llm"
    ours = _predictions(s2.path.parent / "predictions" / "Cmrc_predictions.json")
    _assert_same(ours, _reference(cfg, FlagReference(standins["gemma"], MAX_LEN), s1, tmp_path / "ref"))


def test_flag_template_token_for_token(standins):
    """The flag_llm format's ids equal the reference's, with and without truncation of query and passage."""
    from rag_eval.resolve.rerankers import FORMATS

    ref = FlagReference(standins["gemma"], max_length=24)
    fmt = FORMATS["flag_llm"]
    state = fmt.prepare(ref.tok, 24, None)
    pairs = [("什么是战国无双", "《战国无双3》是由光荣开发的"), ("short", "x"),
             ("a very long query " * 10, "a long passage that will be cut " * 10), ("q", "p " * 40)]
    for q, p in pairs:
        got = fmt.encode(ref.tok, state, q, p)
        assert got.ids == ref.ids(q, p)
        assert got.ids[0] == ref.tok.bos_token_id
    assert [fmt.encode(ref.tok, state, q, p).truncated for q, p in pairs] == [False, False, True, True]


def test_qwen3_template_token_for_token(standins):
    """The qwen3 format's ids equal mteb's wrapper's (prefix, instruction slot, suffix, truncation)."""
    from mteb.models.model_implementations.qwen3_reranker import Qwen3RerankerWrapper

    from rag_eval.resolve.rerankers import FORMATS

    for max_length in (160, 4096):
        wrapper = Qwen3RerankerWrapper(str(standins["qwen3"]), device="cpu", max_length=max_length)
        fmt = FORMATS["qwen3"]
        state = fmt.prepare(wrapper.tokenizer, max_length, "Find the passage")
        for q, d in [("什么是战国无双", "《战国无双3》是由光荣开发的" * 5), ("short", "x")]:
            ref = wrapper.process_inputs([wrapper.format_instruction("Find the passage", q, d)])
            assert fmt.encode(wrapper.tokenizer, state, q, d).ids == ref["input_ids"][0].tolist()


def test_refusals_before_any_model_loads(standins, monkeypatch):
    """Folders rag_eval cannot score as their authors do: one line, before any weights are read."""
    import transformers

    from rag_eval.config import ModelConfig
    from rag_eval.errors import ConfigError
    from rag_eval.resolve.models import load_cross_encoder

    def no_load(*a, **k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_load)
    monkeypatch.setattr(transformers.AutoModelForSequenceClassification, "from_pretrained", no_load)
    cases = {
        "causal_unknown": "is a causal LM (Qwen3ForCausalLM) whose scoring format rag_eval cannot tell: set "
                          "reranker_format to one of cross_encoder, qwen3, flag_llm",
        "qwen3_seq_cls": "is a decoder sequence-classification conversion (Qwen3ForSequenceClassification) without a "
                         "chat template carrying the query/document roles",
        "qwen3_seq_cls_bare": "is a decoder sequence-classification conversion",
        "layerwise": "model[1].reranker_format flag_layerwise: bge-reranker-v2-minicpm-layerwise runs its own",
    }
    for key, text in cases.items():
        with pytest.raises(ConfigError) as info:
            load_cross_encoder(ModelConfig(model_name_or_path=str(standins[key]), is_cross_encoder=True))
        assert text in str(info.value) and "\n" not in str(info.value), key
    with pytest.raises(ConfigError) as info:
        load_cross_encoder(ModelConfig(model_name_or_path=str(standins["gemma"]), is_cross_encoder=True,
                                       max_seq_length=4096))
    assert "max_seq_length is 4096, more than the 1024 positions" in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_cross_encoder(ModelConfig(model_name_or_path=str(standins["xlmr"]), is_cross_encoder=True,
                                       reranker_format="qwen3"))
    assert "reads a causal_lm or sequence_classification head" not in str(info.value)


def test_auto_picks_each_family(standins):
    from rag_eval.config import ModelConfig
    from rag_eval.resolve.rerankers.detect import detect_format

    expect = {"qwen3": "qwen3", "gemma": "flag_llm", "xlmr": "cross_encoder", "qwen3_seq_cls_pairs": "cross_encoder"}
    for key, fmt in expect.items():
        cfg = ModelConfig(model_name_or_path=str(standins[key]), is_cross_encoder=True)
        assert detect_format(cfg, standins[key]) == fmt, key


@pytest.mark.slow
@pytest.mark.subprocess
def test_cli_qwen3_with_global_instruction(standins, minilm_path, data_dir, tmp_path):
    """Through the CLI: a global ``instruction`` fills the slot (here mteb's wrapper's own default text, so the
    unmodified wrapper is the reference), recorded in the result file."""
    from mteb.models.model_implementations.qwen3_reranker import Qwen3RerankerWrapper
    from mteb.models.model_meta import ModelMeta

    from tests.conftest import run_cli

    mteb_default = "Given the user query, retrieval the relevant passages"
    out = tmp_path / "out"
    task = f"{{name: Cmrc, type: Retrieval, path: {data_dir / 'retrieval/cmrc2018-zh'}}}"
    proc = run_cli("model=minilm", "reranker=ms_marco_minilm_local", f"reranker.model_name_or_path={standins['qwen3']}",
                   "reranker.name=null", f"reranker.instruction='{mteb_default}'", f"reranker.max_seq_length={MAX_LEN}",
                   "reranker.encode_kwargs.batch_size=4", f"eval.tasks=[{task}]", f"eval.limits={LIMITS}",
                   f"eval.top_k={TOP_K}", "eval.corpus_size=60", f"eval.output_folder={out}", "eval.verbosity=0",
                   f"hydra.run.dir={tmp_path / 'hydra'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    second = next(p for p in out.glob("stage2/**/Cmrc.json"))
    first = next(p for p in out.glob("stage1/**/Cmrc.json"))
    extra = json.loads(second.read_text())["rag_eval"]
    assert extra["reranker"] == {**extra["reranker"], "format": "qwen3", "instruction": mteb_default}

    class Stage1:
        path = first

    wrapper = Qwen3RerankerWrapper(str(standins["qwen3"]), device="cpu", max_length=MAX_LEN)
    wrapper.mteb_model_meta = ModelMeta.create_empty(overwrites={"name": "ref-qwen3", "revision": "1"})
    cfg = _cfg(minilm_path, {"model_name_or_path": str(standins["qwen3"])}, data_dir, out)
    ref = _reference(cfg, wrapper, Stage1, tmp_path / "ref")
    _assert_same(_predictions(second.parent / "predictions" / "Cmrc_predictions.json"), ref)


@pytest.mark.slow
def test_qwen3_embedding_instruction_on_a_symmetric_task(standins, data_dir, tmp_path):
    """Qwen3-Embedding (sentence-transformers folder: last token, left padding): a global ``instruction``
    reaches both sides of an STS task; the score equals the recipe (instruction + text, left-padded, the last
    token's hidden state, normalised, cosine) and the prompts as applied are in the result file."""
    import torch
    from scipy.stats import spearmanr
    from transformers import AutoModel, AutoTokenizer

    from rag_eval import run_task
    from tests.llm_standins import build_qwen3_embedding

    folder = build_qwen3_embedding(tmp_path, standins["qwen3"])
    instruction = "Instruct: Retrieve semantically similar text\nQuery:"
    scores = run_task({"eval_backend": "RAGEval", "eval_config": {"tool": "MTEB", "model": [
        {"model_name_or_path": str(folder), "instruction": instruction, "encode_kwargs": {"batch_size": 4}}],
        "eval": {"tasks": [{"name": "Lcqmc", "type": "STS", "path": str(data_dir / "sts/lcqmc-zh")}],
                 "limits": 20, "verbosity": 0, "output_folder": str(tmp_path / "out")}}})
    assert scores.ok, scores.failed
    outcome = scores.outcomes[0]
    result = json.loads(outcome.path.read_text())
    assert result["rag_eval"]["prompts_applied"] == {"query": instruction, "document": instruction}
    split = next(iter(result["scores"]))
    ours = result["scores"][split][0]["cosine_spearman"]
    from rag_eval.config import load_config
    from rag_eval.resolve.tasks import resolve_task
    from rag_eval.stages.task_steps import prepare_task

    ev = load_config({"model": [{"model_name_or_path": "m"}], "eval": {
        "tasks": [{"name": "Lcqmc", "type": "STS", "path": str(data_dir / "sts/lcqmc-zh")}], "limits": 20}}).eval
    task = resolve_task(ev.tasks[0], ev, "t")
    prepare_task(task, ev)
    data = task.dataset["default"][split] if "default" in task.dataset else task.dataset[split]
    s1, s2, gold = list(data["sentence1"]), list(data["sentence2"]), list(data["score"])
    assert len(s1) == 20

    tok = AutoTokenizer.from_pretrained(str(folder), padding_side="left")
    model = AutoModel.from_pretrained(str(folder)).eval()

    def embed(texts):
        batch = tok([instruction + t for t in texts], padding=True, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**batch).last_hidden_state[:, -1]
        return torch.nn.functional.normalize(hidden, dim=-1)

    cosine = (embed(s1) * embed(s2)).sum(-1).numpy()
    assert ours == pytest.approx(spearmanr(cosine, gold).statistic, abs=1e-5)


def test_truncation_warning_and_tie_flags(reranker_path, caplog):
    """A sentence-transformers cross-encoder that cuts pairs says how many; constant or mostly tied scores are
    flagged (and named in summary.md's notes)."""
    import logging

    from sentence_transformers import CrossEncoder

    from rag_eval.report.writer import tie_notes
    from rag_eval.stages.reranking import _warn_truncation, tie_stats

    model = CrossEncoder(reranker_path, max_length=16)
    pairs = [("short", "x"), ("a long query " * 5, "a long document " * 10), ("q", "d " * 30)]
    with caplog.at_level(logging.WARNING, logger="rag_eval"):
        _warn_truncation(model, pairs)
    assert "2 of 3 pairs are longer than the cross-encoder's max_seq_length 16 tokens" in caplog.text
    assert tie_stats(np.full(10, 0.5, dtype=np.float32)) == {"pairs": 10, "distinct_scores": 1, "constant": True,
                                                              "mostly_tied": True}
    assert tie_stats(np.array([0.1, 0.1, 0.1, 0.2], dtype=np.float32))["mostly_tied"]
    assert not tie_stats(np.linspace(0, 1, 10, dtype=np.float32))["mostly_tied"]

    class Row:
        model, task, ties = "r", "T", "constant"

    assert "r on T (constant)" in "\n".join(tie_notes([Row()]))
