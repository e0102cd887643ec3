"""model.backend: onnx and openvino run the same sentence-transformers models as torch (tokenizer, prompts,
batches, pooling, normalisation stay sentence-transformers'), equal in fp32; the ONNX export is made once,
reused, and written atomically; families the export cannot handle are refused in one line.

Real data: Cranfield (en) from ../shared/data, MiniLM, the ms-marco cross-encoder.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, local_task

CRANFIELD = "retrieval/cranfield-en"


def _stored(folder: Path) -> dict[str, np.ndarray]:
    """An embedding / score cache folder as {key: vector}."""
    keys = [k for f in sorted(folder.glob("chunk-*.json")) for k in json.loads(f.read_text())]
    vecs = np.concatenate([np.load(f) for f in sorted(folder.glob("chunk-*.npy"))])
    return dict(zip(keys, vecs, strict=True))


@pytest.mark.slow
def test_onnx_and_openvino_equal_torch_in_fp32_and_reuse_their_export(tmp_path, monkeypatch, caplog, data_dir,
                                                                      minilm_path, reranker_path):
    """Two-stage Cranfield on torch, onnx and openvino (fp32), then onnx int8: every cached vector and pair
    score of the fp32 runtimes equals torch's to 1e-5, so do the main scores; backend and precision are in
    the result record, the experiment folders and the cache keys; the export is made once per model and
    reused by the other runtime and by a rerun."""
    import logging

    from rag_eval import run_task

    monkeypatch.setenv("RAG_EVAL_EXPORT_CACHE", str(tmp_path / "exports"))
    entry = local_task("Cranfield", "Retrieval", data_dir / CRANFIELD)
    ev = {"tasks": [entry], "limits": 6, "corpus_size": 60, "top_k": 5, "verbosity": 0}
    reranker = {"model_name_or_path": reranker_path, "is_cross_encoder": True, "name": "ms-marco",
                "max_seq_length": 256}
    runs, caches = {}, {}
    for backend, precision in (("torch", None), ("onnx", None), ("openvino", None), ("onnx", "int8")):
        out = tmp_path / backend  # onnx int8 beside onnx fp32: their caches must stay apart
        model = {"model_name_or_path": minilm_path, "name": "minilm", "backend": backend, "precision": precision}
        before = {kind: set((out / ".cache" / kind).glob("*/*/*")) for kind in ("embeddings", "rerank_scores")}
        runs[backend, precision] = run_task({"model": model, "reranker": {**reranker, "backend": backend,
                                                                          "precision": precision},
                                             "eval": {**ev, "output_folder": str(out)}})
        assert runs[backend, precision].ok, runs[backend, precision].failed
        for kind, old in before.items():
            (new,) = set((out / ".cache" / kind).glob("*/*/*")) - old  # a cache folder of its own
            caches[backend, precision, kind] = _stored(new)
    for variant, backend, precision in (("onnx", "onnx", "fp32"), ("openvino", "openvino", "fp32"),
                                        ("onnx_qint8", "onnx", "int8")):
        files = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / backend).rglob("Cranfield.json"))
        stage1 = [f for f in files if "/stage1/" in f and f"experiments/{variant}/" in f]
        stage2 = [f for f in files if "/stage2/" in f and f.rsplit("/", 2)[-2].endswith(f"_top5_{variant}")]
        assert len(stage1) == 1 and len(stage2) == 1, files
        for rel in stage1 + stage2:
            extra = json.loads((tmp_path / rel).read_text())["rag_eval"]
            assert extra["variant"] == variant
            assert extra["model_config"]["backend"] == backend
            assert extra["model_config"]["precision"] == precision
    for kind in ("embeddings", "rerank_scores"):
        ref = caches["torch", None, kind]
        for key in (("onnx", None), ("openvino", None), ("onnx", "int8")):
            run = caches[(*key, kind)]
            shared = ref.keys() & run.keys()
            assert len(shared) >= 0.8 * len(ref), (key, kind)
            diff = max(float(np.abs(ref[k] - run[k]).max()) for k in shared)
            scale = max(1.0, max(float(np.abs(ref[k]).max()) for k in shared))  # pair scores are logits (~10)
            if key[1] == "int8":
                assert 1e-3 < diff < 3 * scale, (key, kind, diff)  # really quantised, still close
            else:
                assert diff <= 1e-5 * scale, (key, kind, diff)
    torch_run = runs["torch", None]["Cranfield"]
    for key, tol in ((("onnx", None), 1e-5), (("openvino", None), 1e-5), (("onnx", "int8"), 0.1)):
        for stage in ("stage1", "stage2"):
            assert runs[key]["Cranfield"][stage]["test"]["ndcg_at_10"] == pytest.approx(
                torch_run[stage]["test"]["ndcg_at_10"], abs=tol), (key, stage)

    exports = sorted((tmp_path / "exports").glob("*/*/*"))
    assert [p.parts[-3] for p in exports] == ["minilm", "ms-marco"], exports  # one export per model, shared
    assert all(sorted(q.name for q in p.iterdir()) == ["meta.json", "model.int8-ort{}.onnx".format(
        __import__("onnxruntime").__version__), "model.onnx"] for p in exports), exports
    before = {p: (p / "model.onnx").stat().st_mtime_ns for p in exports}
    caplog.set_level(logging.INFO, logger="rag_eval.resolve.backends.export")
    rerun = run_task({"model": {"model_name_or_path": minilm_path, "name": "minilm", "backend": "openvino"},
                      "eval": {**ev, "output_folder": str(tmp_path / "rerun")}})
    assert rerun.ok, rerun.failed
    assert "reusing the ONNX export" in caplog.text and "exporting to ONNX" not in caplog.text
    assert {p: (p / "model.onnx").stat().st_mtime_ns for p in exports} == before
    assert sorted((tmp_path / "exports").glob("*/*/*")) == exports



_LOAD_AND_ENCODE = """
import sys, numpy as np
from rag_eval.config.schema import ModelConfig
from rag_eval.resolve.models import load_bi_encoder
model = load_bi_encoder(ModelConfig(model_name_or_path=sys.argv[1], name="minilm", backend=sys.argv[2]))
np.save(sys.argv[3], model.encoder.model.encode(["one sentence", "and another, longer one"]))
"""


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_second_process_reads_the_export_while_another_writes_it(tmp_path, minilm_path):
    """Two processes load the same model on onnx and openvino at once: the export folder appears whole (never
    a half-written file under its final name), both processes encode, the same vectors, one export kept, no
    temporary folder left."""
    import os
    import time

    env = {**os.environ, "RAG_EVAL_EXPORT_CACHE": str(tmp_path / "exports")}
    exports = tmp_path / "exports" / "minilm"

    def start(backend: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", _LOAD_AND_ENCODE, minilm_path, backend,
                                 str(tmp_path / f"{backend}.npy")], cwd=ROOT, env=env, stderr=subprocess.PIPE,
                                text=True)

    first = start("onnx")
    while first.poll() is None and not list(exports.glob("*/.tmp-*")):  # the first is writing its export
        time.sleep(0.05)
    second = start("openvino")
    seen_whole = 0
    while first.poll() is None or second.poll() is None:
        for folder in exports.glob("*/[!.]*"):  # a folder under its final name is complete
            assert {p.name for p in folder.iterdir()} >= {"model.onnx", "meta.json"}, list(folder.iterdir())
            seen_whole += 1
        time.sleep(0.05)
    for proc in (first, second):
        assert proc.returncode == 0, proc.stderr.read()[-3000:]
    assert seen_whole > 0
    np.testing.assert_allclose(np.load(tmp_path / "onnx.npy"), np.load(tmp_path / "openvino.npy"), atol=1e-5)
    assert [p.name for p in exports.glob("*/*")] == [p.name for p in exports.glob("*/[!.]*")]  # no .tmp- left
    assert len(list(exports.glob("*/*"))) == 1


def _tiny_decoder(folder: Path, tokenizer_from: str) -> Path:
    """A 1-layer GPT-2 (decoder-only) with MiniLM's tokenizer, as sentence-transformers loads any AutoModel."""
    from transformers import GPT2Config, GPT2Model

    GPT2Model(GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=30522, n_positions=64)).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (Path(tokenizer_from) / name).exists():
            shutil.copy(Path(tokenizer_from) / name, folder / name)
    return folder


def test_refusals_name_the_backends_that_can_run_the_model(tmp_path, monkeypatch, minilm_path):
    """A decoder-only model is refused by onnx / openvino, in one line naming torch; OpenVINO bf16 runs where
    the CPU has bf16 (close to fp32) and is refused in one line where it has not; onnx bf16 and openvino int8
    are refused before anything loads."""
    from rag_eval.config.schema import ModelConfig
    from rag_eval.errors import ConfigError
    from rag_eval.resolve.backends import openvino as ov_backend
    from rag_eval.resolve.models import load_bi_encoder

    monkeypatch.setenv("RAG_EVAL_EXPORT_CACHE", str(tmp_path / "exports"))
    decoder = _tiny_decoder(tmp_path / "gpt2", minilm_path)
    for backend in ("onnx", "openvino"):
        with pytest.raises(ConfigError, match=r"^model\[0\] \(SentenceTransformer\): a gpt2 model \(GPT2Model\) is "
                                              r"not an encoder family the ONNX export handles \(BERT, XLM-R, \.\.\.\): "
                                              r"use backend=torch$"):
            load_bi_encoder(ModelConfig(model_name_or_path=str(decoder), backend=backend))
    assert not list((tmp_path / "exports").glob("*/*/*"))  # refused before exporting
    bf16 = ModelConfig(model_name_or_path=minilm_path, backend="openvino", precision="bf16")
    if ov_backend.cpu_has_bf16():
        sentences = ["one sentence", "and another, longer one"]
        fp32 = load_bi_encoder(ModelConfig(model_name_or_path=minilm_path, backend="openvino"))
        low = load_bi_encoder(bf16)
        diff = np.abs(fp32.encoder.model.encode(sentences) - low.encoder.model.encode(sentences)).max()
        assert 0 < diff < 0.05
    else:
        with pytest.raises(ConfigError, match=r"^model\[0\]\.precision is bf16 with backend openvino, but this CPU "
                                              r"has no bf16"):
            load_bi_encoder(bf16)
