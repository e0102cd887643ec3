"""The catalogue: every bad input a user can type, and the one line + exit code the CLI answers with.

One table. Each row is a real ``python -m rag_eval`` command line; the answer must be exactly one
line on stderr, starting with the expected text, no traceback, and the expected exit code. A new
config key or check adds a row here. The rows run one after another in this process
(:func:`tests.conftest.run_main`: ``rag_eval.__main__.main()`` with ``sys.argv`` set, stdout/stderr
captured at the file descriptors, ``SystemExit`` as the exit code), so the ~20 s of imports are paid
once, not per row; most rows fail before mteb or torch is imported; the ``slow`` ones import mteb or
sentence-transformers first (or run a small evaluation). A few rows (``SMOKES``) also run as real
``python -m rag_eval`` subprocesses, to the same answer. ``{tmp}`` in a row is a folder prepared by
the fixture.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import CONF, ROOT, cli_env, run_main

DEMO = ROOT / "rag_eval" / "demo_data"
CMRC = f"eval.tasks=[{{name: Cmrc, type: Retrieval, path: {DEMO}/retrieval/cmrc2018-zh-mini}}]"


def _options(group: str) -> str:
    """The options Hydra offers for a group: its YAML files (``base`` is the schema, not an option)."""
    return ", ".join(sorted(p.stem for p in (CONF / group).glob("*.yaml")))


@dataclass(frozen=True)
class Row:
    id: str
    args: tuple[str, ...]
    code: int
    line: str  # the start of the one line on stderr ("" = stderr stays empty)
    why: str = field(default="", compare=False)


def slow(row: Row):
    """A row whose command imports mteb or sentence-transformers before it answers (15-25 s)."""
    return pytest.param(row, marks=pytest.mark.slow, id=row.id)


E = "rag_eval: error: "

CATALOGUE = [
    # --- Hydra: composition, before rag_eval's task function runs
    Row("key-typo", ("eval.limts=100",), 2, E + "unknown config key 'eval.limts': did you mean 'eval.limits'?"),
    Row("group-typo", ("modle=minilm",), 2, E + "unknown config key 'modle': did you mean 'model'?"),
    Row("no-such-model", ("model=nosuch",), 2,
        E + f"model=nosuch: no such option in group 'model'; options: {_options('model')}"),
    Row("no-such-reranker", ("reranker=nosuch",), 2,
        E + f"reranker=nosuch: no such option in group 'reranker'; options: {_options('reranker')}"),
    Row("no-such-eval", ("eval=nosuch",), 2,
        E + f"eval=nosuch: no such option in group 'eval'; options: {_options('eval')}"),
    Row("no-such-launcher", ("hydra/launcher=nosuch",), 2,
        E + "hydra/launcher=nosuch: no such option in group 'hydra/launcher'; options: basic, joblib"),
    Row("no-primary-config", ("--config-name=nosuch",), 2, E + "Cannot find primary config 'nosuch'."),
    Row("malformed-list", ("eval.tasks=[LCQMC",), 2,
        E + "malformed override 'eval.tasks=[LCQMC': no viable alternative at input '[LCQMC'; quote a value"),
    Row("malformed-quote", ('eval.seed="42',), 2,
        E + "malformed override 'eval.seed=\"42': unexpected character '\"' at position 11; quote a value"),
    Row("malformed-equals", ("eval.limits==5",), 2, E + "malformed override 'eval.limits==5': extraneous input '='"),
    Row("no-key", ("=5",), 2, E + "Config group override must be a string or a list. Got int (Hydra could not read"),
    Row("limits-not-int", ("eval.limits=ten",), 2,
        E + "eval.limits must be an integer or null, got 'ten' (override 'eval.limits=ten')"),
    Row("bool-not-bool", ("eval.overwrite_results=maybe",), 2,
        E + "eval.overwrite_results must be true or false, got 'maybe' (override 'eval.overwrite_results=maybe')"),
    Row("int-not-float", ("model.max_seq_length=1.5",), 2,
        E + "model.max_seq_length must be an integer or null, got 1.5 (override 'model.max_seq_length=1.5')"),
    Row("mapping-not-int", ("model.encode_kwargs=5",), 2,
        E + "model.encode_kwargs must be a mapping, e.g. {key: value}, got 5 (override 'model.encode_kwargs=5')"),
    Row("list-not-int", ("eval.tasks=5",), 2, E + "eval.tasks must be a list, e.g. [a, b], got 5"),
    Row("null-not-int", ("eval.verbosity=null",), 2,
        E + "eval.verbosity must be an integer, got None (override 'eval.verbosity=null')"),
    Row("reranker-not-picked", ("reranker.max_seq_length=128",), 2,
        E + "reranker.max_seq_length: no reranker is selected (reranker: null), so it has no keys: pick one "
            f"first, e.g. reranker=api reranker.max_seq_length=128; options: {_options('reranker')}"),
    Row("delete-missing", ("~eval.nosuch",), 2, E + "Could not delete from config. 'eval.nosuch' does not exist."),
    Row("prompts-not-mapping", ("model.prompts=5",), 2,
        E + "model.prompts must be a mapping, e.g. {key: value}, got 5 (override 'model.prompts=5')"),
    Row("config-kwargs-not-mapping", ("model.config_kwargs=5",), 2,
        E + "model.config_kwargs must be a mapping, e.g. {key: value}, got 5"),
    Row("extra-body-not-mapping", ("model.extra_body=5",), 2,
        E + "model.extra_body must be a mapping, e.g. {key: value}, got 5"),
    Row("trust-remote-code-not-bool", ("model.trust_remote_code=maybe",), 2,
        E + "model.trust_remote_code must be true or false, got 'maybe'"),
    Row("embed-dim-text", ("model.embed_dim=ten",), 2,
        E + "model.embed_dim must be an integer or null, got 'ten' (override 'model.embed_dim=ten')"),
    Row("seed-not-int", ("eval.seed=x",), 2, E + "eval.seed must be an integer, got 'x' (override 'eval.seed=x')"),
    Row("raise-error-not-bool", ("eval.raise_error=maybe",), 2, E + "eval.raise_error must be true or false"),
    Row("cache-embeddings-not-bool", ("eval.cache_embeddings=maybe",), 2,
        E + "eval.cache_embeddings must be true or false, got 'maybe'"),
    Row("cache-scores-not-bool", ("eval.cache_scores=maybe",), 2,
        E + "eval.cache_scores must be true or false, got 'maybe' (override 'eval.cache_scores=maybe')"),
    Row("dry-run-not-bool", ("eval.dry_run=maybe",), 2,
        E + "eval.dry_run must be true or false, got 'maybe' (override 'eval.dry_run=maybe')"),
    Row("task-types-not-list", ("eval.task_types=5",), 2, E + "eval.task_types must be a list, e.g. [a, b], got 5"),
    Row("languages-not-list", ("eval.languages=5",), 2, E + "eval.languages must be a list, e.g. [a, b], got 5"),
    Row("interpolation", ("eval.output_folder=${nosuch}",), 2,
        E + "Interpolation key 'nosuch' not found (resolving hydra."),
    # --- the output folder, before Hydra creates its run folder in it and before any model loads
    Row("output-not-creatable", ("eval.output_folder=/proc/forbidden",), 2,
        E + "eval.output_folder /proc/forbidden cannot be created (No such file or directory): choose a folder "
            "you can write, e.g. eval.output_folder=./outputs"),
    Row("output-before-model", ("eval.output_folder=/proc/forbidden", "model.model_name_or_path=./no/such/model"), 2,
        E + "eval.output_folder /proc/forbidden cannot be created"),  # not the model's line: no model is looked at
    Row("output-is-a-file", ("eval.output_folder={tmp}/a-file",), 2,
        E + "eval.output_folder {tmp}/a-file is a file, not a folder: choose another folder"),
    Row("hydra-run-dir", ("hydra.run.dir=/proc/forbidden/h",), 2,
        E + "cannot create /proc/forbidden: No such file or directory: choose a folder you can write"),
    # --- rag_eval's own checks (config/load.py), still before any model loads
    Row("append-unknown", ("+eval.foo=1",), 2, E + "unknown config key 'eval.foo': allowed: benchmark,"),
    Row("pooling", ("model.pooling_mode=avg",), 2,
        E + "model[0].pooling_mode is 'avg': use one of cls, lasttoken, max, mean, mean_sqrt_len_tokens, "
            "weightedmean or null for the model's own"),
    Row("limits-zero", ("eval.limits=0",), 2, E + "eval.limits is 0: use a positive integer, or null for all"),
    Row("top-k-zero", ("eval.top_k=0",), 2, E + "eval.top_k is 0: use a positive integer (default 100)"),
    Row("top-k-list-zero", ("eval.top_k=[10,0]",), 2,
        E + "eval.top_k is [10, 0]: use a positive integer (default 100) or a list of them"),
    Row("top-k-text", ("eval.top_k=ten",), 2, E + "eval.top_k must be an integer or a list of integers, got 'ten'"),
    Row("top-k-empty-list", ("eval.top_k=[]",), 2, E + "eval.top_k must be an integer or a list of integers, got []"),
    Row("corpus-size-zero", ("eval.corpus_size=0",), 2,
        E + "eval.corpus_size is 0: use a positive integer, or null for all"),
    Row("corpus-chunk-size-zero", ("eval.corpus_chunk_size=0",), 2,
        E + "eval.corpus_chunk_size is 0: use a positive integer, or null for mteb's 50,000"),
    Row("model-hub", ("model.hub=github",), 2, E + "model[0].hub is 'github': use one of huggingface, modelscope"),
    Row("empty-model-path", ("model.model_name_or_path=",), 2,
        E + "model[0].model_name_or_path is empty: give a hub id or a local path"),
    Row("max-seq-length-zero", ("model.max_seq_length=0",), 2,
        E + "model[0].max_seq_length is 0: use a positive integer or null"),
    Row("first-is-cross-encoder", ("model.is_cross_encoder=true",), 2,
        E + "model[0] is a cross-encoder: the first model must be a bi-encoder (stage 1)"),
    # --- retrieval stacks: model_type, embed_dim, output_dtype, search_backend, BM25, hybrid
    Row("model-type", ("model.model_type=bm26",), 2,
        E + "model[0].model_type is 'bm26': use one of sentence_transformer, static, bm25, hybrid"),
    Row("embed-dim-zero", ("model.embed_dim=0",), 2,
        E + "model[0].embed_dim is 0: use a positive integer or null for all dimensions"),
    Row("precision-unknown", ("model.precision=fp8",), 2,
        E + "model[0].precision is 'fp8': use one of fp32, fp16, bf16, int8 or null"),
    Row("precision-int8-cuda", ("model.precision=int8", "model.device=cuda"), 2,
        E + "model[0].precision is int8 (torch's dynamic quantisation: one CPU process), but model[0].device is "
            "'cuda': use device=cpu, or precision=fp16/bf16 on CUDA"),
    Row("precision-fp16-cpu", ("model.precision=fp16", "model.device=cpu"), 2,
        E + "model[0].precision is fp16, which needs a CUDA device (model[0].device is 'cpu'): on CPU use "
            "precision=bf16"),
    Row("torch-dtype-fp16-cpu", ("model.model_kwargs.torch_dtype=float16", "model.device=cpu"), 2,
        E + "model[0].model_kwargs.torch_dtype is float16, which needs a CUDA device (model[0].device is 'cpu'): on "
            "CPU use precision=bf16"),
    Row("limits-mode", ("eval.limits_mode=first",), 2,
        E + "eval.limits_mode is 'first': use one of seeded, evalscope"),
    Row("limits-mode-corpus-size", ("eval.limits_mode=evalscope", "eval.corpus_size=500"), 2,
        E + "eval.corpus_size is 500 with limits_mode evalscope, whose corpus is the judged documents only: drop "
            "corpus_size or use limits_mode seeded"),
    Row("precision-and-dtype", ("reranker=ms_marco_minilm_local", "reranker.precision=bf16",
                                "reranker.model_kwargs.torch_dtype=float16"), 2,
        E + "model[1].precision and model[1].model_kwargs.torch_dtype are both set: keep one"),
    Row("backend-unknown", ("model.backend=tensorrt",), 2,
        E + "model[0].backend is 'tensorrt': use one of torch, onnx, openvino"),
    Row("backend-remote-code", ("model.backend=onnx", "model.trust_remote_code=true"), 2,
        E + "model[0].backend onnx cannot export a model with remote code (trust_remote_code): use backend=torch"),
    Row("backend-cuda", ("reranker=ms_marco_minilm_local", "reranker.backend=openvino", "reranker.device=cuda"), 2,
        E + "model[1].backend is openvino (one CPU process), but model[1].device is 'cuda': use device=cpu, or "
            "backend=torch on CUDA"),
    Row("backend-bm25", ("model=bm25", "model.backend=onnx"), 2,
        E + "model[0].backend onnx does not apply to a bm25 model (no local transformer): use backend=torch"),
    Row("backend-onnx-bf16", ("model.backend=onnx", "model.precision=bf16"), 2,
        E + "model[0].precision is bf16 with backend onnx, which runs fp32 or int8 on the CPU: use "
            "precision=fp32/int8, or backend=openvino for bf16"),
    Row("backend-openvino-int8", ("model.backend=openvino", "model.precision=int8"), 2,
        E + "model[0].precision is int8 with backend openvino, which runs fp32 or bf16 on the CPU: use "
            "precision=fp32/bf16, or backend=onnx for int8"),
    Row("output-dtype", ("model.output_dtype=int3",), 2,
        E + "model[0].output_dtype is 'int3': use one of float16, bfloat16, int8, uint8, int4, uint4, binary or null"),
    Row("search-backend", ("model.search_backend=annoy",), 2,
        E + "model[0].search_backend is 'annoy': use one of exact, faiss"),
    Row("bm25-option-typo", ("model=bm25", "model.model_kwargs.k_1=1.2"), 2,
        E + "unknown BM25 option 'model[0].model_kwargs.k_1': did you mean 'model[0].model_kwargs.k1'?"),
    Row("bm25-tokenizer", ("model=bm25", "model.model_kwargs.tokenizer=nltk"), 2,
        E + "model[0].model_kwargs.tokenizer is 'nltk': use one of auto, char, jieba"),
    Row("bm25-as-reranker", ("reranker=ms_marco_minilm_local", "reranker.model_type=bm25"), 2,
        E + "model[1]: a bm25 model retrieves (stage 1); it cannot be the reranker"),
    Row("hybrid-without-type", ("model.hybrid.fusion=rrf",), 2,
        E + "model[0].hybrid is set but model_type is 'sentence_transformer': set model_type: hybrid"),
    Row("hybrid-key-typo", ("model=hybrid_bm25_minilm", "model.hybrid.fusoin=rrf"), 2,
        E + "unknown config key 'model[0].hybrid.fusoin': did you mean 'model[0].hybrid.fusion'?"),
    Row("hybrid-one-model", ("model=hybrid_bm25_minilm", "model.hybrid.models=[{model_type: bm25}]"), 2,
        E + "model[0].hybrid.models needs at least two models to fuse"),
    Row("hybrid-fusion", ("model=hybrid_bm25_minilm", "model.hybrid.fusion=max"), 2,
        E + "model[0].hybrid.fusion is 'max': use one of rrf, dbsf, rsf"),
    Row("hybrid-weights", ("model=hybrid_bm25_minilm", "model.hybrid.weights=[1]"), 2,
        E + "model[0].hybrid.weights must be 2 numbers (one per model) or null for equal"),
    Row("hybrid-weights-negative", ("model=hybrid_bm25_minilm", "model.hybrid.weights=[-1,0]"), 2,
        E + "model[0].hybrid.weights is [-1, 0]: use numbers >= 0, at least one above 0 (or null for equal)"),
    Row("hybrid-weights-all-zero", ("model=hybrid_bm25_minilm", "model.hybrid.weights=[0,0.0]"), 2,
        E + "model[0].hybrid.weights is [0, 0.0]: use numbers >= 0, at least one above 0 (or null for equal)"),
    Row("bm25-k1-negative", ("model=bm25", "model.model_kwargs.k1=-3"), 2,
        E + "model[0].model_kwargs.k1 is -3: use a number >= 0 (bm25s' default 1.5)"),
    Row("bm25-b-range", ("model=bm25", "model.model_kwargs.b=7"), 2,
        E + "model[0].model_kwargs.b is 7: use a number from 0 to 1 (bm25s' default 0.75)"),
    Row("hybrid-rrf-k", ("model=hybrid_bm25_minilm", "model.hybrid.rrf_k=-1"), 2,
        E + "model[0].hybrid.rrf_k is -1: use an integer >= 0 (default 60)"),
    Row("hybrid-sub-model-top-k", ("model=hybrid_bm25_minilm", "model.hybrid.sub_model_top_k=0"), 2,
        E + "model[0].hybrid.sub_model_top_k is 0: use a positive integer or null"),
    Row("hybrid-sub-batch-size", ("model=hybrid_bm25_minilm",
                                  "model.hybrid.models=[{model_type: bm25}, {model_name_or_path: x, "
                                  "encode_kwargs: {batch_size: 0}}]"), 2,
        E + "model[0].hybrid.models[1].encode_kwargs.batch_size is 0: use a positive integer"),
    # --- a served model (checked before any request is sent)
    Row("api-base-not-http", ("model.api_base=ftp://x",), 2,
        E + "model[0].api_base is 'ftp://x': use an http(s) URL such as http://127.0.0.1:7997/v1"),
    Row("rerank-schema", ("model.model_name=m", "model.rerank_schema=xml"), 2,
        E + "model[0].rerank_schema is 'xml': use one of cohere, tei"),
    Row("request-timeout-zero", ("model.model_name=m", "model.request_timeout=0"), 2,
        E + "model[0].request_timeout is 0.0: use a number above 0"),
    Row("max-retries-negative", ("model.model_name=m", "model.max_retries=-1"), 2,
        E + "model[0].max_retries is -1: use a number above -1"),
    Row("concurrency-zero", ("model.model_name=m", "model.concurrency=0"), 2,
        E + "model[0].concurrency is 0: use a number above 0"),
    Row("dimensions-zero", ("model.model_name=m", "model.dimensions=0"), 2,
        E + "model[0].dimensions is 0: use a positive integer or null"),
    Row("task-names-one-file", (f"eval.tasks=[{{name: Fz Task, type: STS, path: {DEMO}/sts/stsb-zh-mini}}, "
                                f"{{name: Fz_Task, type: STS, path: {DEMO}/sts/stsb-zh-mini}}]",), 2,
        E + "eval.tasks names 'Fz Task' and 'Fz_Task', which both map to the result file Fz_Task.json: rename one"),
    Row("hub", ("eval.hub=github",), 2, E + "eval.hub is 'github': use one of huggingface, modelscope"),
    Row("no-tasks", ("eval.tasks=[]",), 2, E + "eval.tasks is empty: name at least one task, e.g. eval=demo"),
    Row("batch-size-zero", ("model.encode_kwargs.batch_size=0",), 2,
        E + "model[0].encode_kwargs.batch_size is 0: use a positive integer (texts per encode call; default 32)"),
    Row("batch-size-text", ("model.encode_kwargs.batch_size=ten",), 2,
        E + "model[0].encode_kwargs.batch_size is 'ten': use a positive integer"),
    Row("encode-typo", ("model.encode_kwargs.batch_sise=8",), 2,  # reads SentenceTransformer.encode's keywords
        E + "unknown SentenceTransformer.encode keyword 'model[0].encode_kwargs.batch_sise': did you mean "
            "'model[0].encode_kwargs.batch_size'?"),
    Row("encode-reserved", ("model.encode_kwargs.prompt=query",), 2,
        E + "model[0].encode_kwargs.prompt is set by rag_eval on every call: use model.prompt or model.prompts"),
    slow(Row("encode-literal", ("model.encode_kwargs.precision=float64",), 2,
             E + "model[0].encode_kwargs.precision is 'float64': use one of 'float32', 'int8', 'uint8', 'binary', "
                 "'ubinary'")),
    Row("reranker-device-list", ("reranker=ms_marco_minilm_local", "reranker.device=[cpu,cpu]"), 2,
        E + "model[1].device is a list: a cross-encoder runs on one device"),
    # --- tasks, data and models (these import mteb first)
    slow(Row("unknown-benchmark", ("eval.benchmark=NoSuchBenchmark",), 2,
             E + "eval.benchmark: unknown mteb benchmark 'NoSuchBenchmark': ")),  # then a close name or where to look
    slow(Row("unknown-task", ("eval.tasks=[NoSuchTask]",), 2,
             E + "eval.tasks[0]: unknown task 'NoSuchTask': see `python -m mteb available-tasks` for names")),
    slow(Row("missing-model-path", ("model.model_name_or_path=./no/such/model",), 2,
             E + "model path './no/such/model' not found")),
    slow(Row("bad-data-line", ("eval.tasks=[{name: BadSTS, type: STS, path: {tmp}/bad-sts}]",), 2,
             E + "{tmp}/bad-sts/test.jsonl:2 is not valid JSON (Expecting ':' delimiter): fix or remove the line")),
    slow(Row("missing-split", (f"eval.tasks=[{{name: X, type: STS, path: {DEMO}/sts/stsb-zh-mini, split: dev}}]",),
             2, E + f"eval.tasks[0].split 'dev' is not in {DEMO}/sts/stsb-zh-mini (found: test)")),
    slow(Row("hub-model-offline", ("model=m3e", "eval=demo"), 2, E + "model 'AI-ModelScope/m3e-base' (revision "
                                                                   "'master') is not in the local modelscope cache")),
    # every task's data is looked up before any model loads (a 31-task run stops at once, not after encoding)
    slow(Row("hub-data-offline", ("model=m3e", "eval=cmteb"), 2,
             E + "task T2Retrieval: dataset 'mteb/T2Retrieval' is not in the local modelscope cache")),
    slow(Row("dry-run-not-ready", ("eval=cmteb", "eval.dry_run=true", "eval.limits=10"), 2,
             E + "dry run: task T2Retrieval: dataset 'mteb/T2Retrieval' is not in the local modelscope cache")),
    slow(Row("max-seq-length-beyond-positions", ("model.max_seq_length=100000",), 2,
             E + "model[0].max_seq_length is 100000, more than the 512 positions of ")),
    slow(Row("reranker-max-seq-length-beyond-positions",
             ("reranker=ms_marco_minilm_local", "reranker.max_seq_length=100000"), 2,
             E + "model[1].max_seq_length is 100000, more than the 512 positions of ")),
    # --- data files: file:line and the fix, not a library's message
    slow(Row("qrels-not-utf8", ("eval.tasks=[{name: R, type: Retrieval, path: {tmp}/qrels-bytes}]",), 2,
             E + "{tmp}/qrels-bytes/qrels/test.tsv:3 is not UTF-8 (invalid start byte at byte 4): re-encode the "
                 "file as UTF-8")),
    slow(Row("qrels-header-only", ("eval.tasks=[{name: R, type: Retrieval, path: {tmp}/qrels-header}]",), 2,
             E + "{tmp}/qrels-header/qrels/test.tsv holds no qrels rows (a header at most): add query-id, corpus-id, "
                 "score lines")),
    slow(Row("qrels-score-inf", ("eval.tasks=[{name: R, type: Retrieval, path: {tmp}/qrels-inf}]",), 2,
             E + "{tmp}/qrels-inf/qrels/test.tsv:1 score 'inf' is not a finite number: use an integer relevance "
                 "(0, 1, 2, ...)")),
    slow(Row("labels-kinds-across-files", ("eval.tasks=[{name: C, type: Classification, path: {tmp}/cls-across}]",),
             2, E + "{tmp}/cls-across/test.jsonl:1 label 1 is an integer, but the label at {tmp}/cls-across/"
                    "train.jsonl:1 is a string: use one kind of label (all strings or all integers) in every file "
                    "of the task")),
    slow(Row("labels-kinds-in-one-file", ("eval.tasks=[{name: C, type: Classification, path: {tmp}/cls-within}]",),
             2, E + "{tmp}/cls-within/train.jsonl:3 label 1 is an integer, but the label at {tmp}/cls-within/"
                    "train.jsonl:1 is a string: use one kind of label (all strings or all integers) in every file "
                    "of the task")),
    slow(Row("pair-label-2", ("eval.tasks=[{name: P, type: PairClassification, path: {tmp}/pairs-2}]",), 2,
             E + "{tmp}/pairs-2/test.jsonl:2 field 'label' is 2: pair-classification labels are 0 (not a pair) or 1 "
                 "(a pair)")),
    # --- eval.verbosity=0: nothing on stderr, mteb's HybridSearch and bm25s bars included
    slow(Row("bm25-quiet", ("model=bm25", CMRC, "eval.limits=5"), 0, "")),
    slow(Row("hybrid-quiet", ("model=hybrid_bm25_minilm",
                              "model.hybrid.models=[{model_type: bm25}, {model_type: bm25, name: bm25-char, "
                              "model_kwargs: {tokenizer: char}}]", CMRC, "eval.limits=5"), 0, "")),
    # --- reranker formats (rag_eval/resolve/rerankers): refused before any model loads or downloads
    Row("reranker-format-typo", ("reranker=ms_marco_minilm_local", "reranker.reranker_format=qwen"), 2,
        E + "model[1].reranker_format is 'qwen': use one of auto, cross_encoder, qwen3, flag_llm, flag_layerwise"),
    Row("reranker-format-on-bi-encoder", ("model.reranker_format=qwen3",), 2,
        E + "model[0].reranker_format is qwen3: it applies to a reranker (is_cross_encoder: true) only"),
    Row("reranker-layerwise", ("reranker=bge_reranker_v2_minicpm_layerwise",), 2,
        E + "model[1].reranker_format flag_layerwise: bge-reranker-v2-minicpm-layerwise runs its own modelling "
            "code"),
    slow(Row("reranker-causal-unknown", ("reranker=ms_marco_minilm_local",
                                         "reranker.model_name_or_path={tmp}/some-llm"), 2,
             E + "model[1] '{tmp}/some-llm' is a causal LM (Qwen3ForCausalLM) whose scoring format rag_eval cannot "
                 "tell: set reranker_format to one of cross_encoder, qwen3, flag_llm")),
    slow(Row("reranker-seq-cls-no-roles", ("reranker=ms_marco_minilm_local",
                                           "reranker.model_name_or_path={tmp}/some-seq-cls"), 2,
             E + "model[1] '{tmp}/some-seq-cls' is a decoder sequence-classification conversion "
                 "(Qwen3ForSequenceClassification) without a chat template carrying the query/document roles")),
    slow(Row("llm-max-seq-length-beyond-positions", ("reranker=ms_marco_minilm_local",
                                                      "reranker.model_name_or_path={tmp}/some-llm",
                                                  "reranker.reranker_format=qwen3", "reranker.max_seq_length=4096"),
             2, E + "model[1].max_seq_length is 4096, more than the 1024 positions of '{tmp}/some-llm'")),
    # --- unsafe names are sanitised inside the output folder: the run succeeds
    slow(Row("unsafe-names", ("model.name=../../../tmp/escape",
                              f"eval.tasks=[{{name: ../../etc, type: STS, path: {DEMO}/sts/stsb-zh-mini}}]",
                              "eval.limits=12"), 0, "")),
    # two-stage: mteb names the stage-1 predictions file from the task name (rag_eval gives it the safe one)
    slow(Row("unsafe-names-two-stage", ("reranker=ms_marco_minilm_local", "eval.limits=3", "eval.top_k=3",
                                        "eval.corpus_size=20",
                                        "eval.tasks=[{name: ../../../../../x, type: Retrieval, path: "
                                        f"{DEMO}/retrieval/cmrc2018-zh-mini}}]"), 0, "")),
]


def _row(entry) -> Row:
    return entry.values[0] if hasattr(entry, "values") else entry


def _ids():
    return [_row(e).id for e in CATALOGUE]


def _arguments(row: Row, tmp: Path) -> list[str]:
    args = [a.replace("{tmp}", str(tmp)) for a in row.args]
    defaults = [f"eval.output_folder={tmp / 'out' / row.id}", f"hydra.run.dir={tmp / 'hydra' / row.id}",
                "eval.verbosity=0"]
    given = {a.split("=", 1)[0] for a in args}
    return [*[d for d in defaults if d.split("=", 1)[0] not in given], *args]


def _command(row: Row, tmp: Path) -> list[str]:
    return [sys.executable, "-m", "rag_eval", *_arguments(row, tmp)]


def _broken_data(tmp: Path) -> None:
    """The data-file rows' folders: a retrieval folder with a broken qrels file, classification and pair files."""
    def retrieval(name: str, qrels: bytes) -> None:
        (tmp / name / "qrels").mkdir(parents=True)
        (tmp / name / "corpus.jsonl").write_text('{"_id": "d1", "text": "a"}\n{"_id": "d2", "text": "b"}\n')
        (tmp / name / "queries.jsonl").write_text('{"_id": "q1", "text": "a"}\n')
        (tmp / name / "qrels" / "test.tsv").write_bytes(qrels)

    retrieval("qrels-bytes", b"query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td\xff2\t1\n")
    retrieval("qrels-header", b"query-id\tcorpus-id\tscore\n")
    retrieval("qrels-inf", b"q1\td1\tinf\n")

    def rows(name: str, file: str, lines: list[str]) -> None:
        (tmp / name).mkdir(exist_ok=True)
        (tmp / name / file).write_text("".join(line + "\n" for line in lines))

    rows("cls-across", "train.jsonl", ['{"text": "a", "label": "pos"}', '{"text": "b", "label": "neg"}'])
    rows("cls-across", "test.jsonl", ['{"text": "a", "label": 1}', '{"text": "b", "label": 0}'])
    rows("cls-within", "train.jsonl", ['{"text": "a", "label": "pos"}', '{"text": "b", "label": "neg"}',
                                       '{"text": "c", "label": 1}'])
    rows("cls-within", "test.jsonl", ['{"text": "a", "label": "pos"}', '{"text": "b", "label": "neg"}'])
    rows("pairs-2", "test.jsonl", ['{"sentence1": "a", "sentence2": "b", "label": 1}',
                                   '{"sentence1": "a", "sentence2": "c", "label": 2}'])


def _prepare(tmp: Path) -> None:
    """The folders the rows name as ``{tmp}/...``."""
    (tmp / "a-file").write_text("not a folder\n")
    for folder, arch in (("some-llm", "Qwen3ForCausalLM"), ("some-seq-cls", "Qwen3ForSequenceClassification")):
        (tmp / folder).mkdir()  # config.json alone: the format is decided before any weights are read
        (tmp / folder / "config.json").write_text(f'{{"architectures": ["{arch}"], "model_type": "qwen3", '
                                                  '"max_position_embeddings": 1024}')
    (tmp / "bad-sts").mkdir()
    (tmp / "bad-sts" / "test.jsonl").write_text('{"sentence1": "a", "sentence2": "b", "score": 1}\n'
                                                '{"sentence1": "a", "sentence2" "b", "score": 0}\n')
    _broken_data(tmp)


def _selected(request, name: str) -> list[Row]:
    selected = {item.callspec.id for item in request.session.items
                if getattr(item, "originalname", "") == name and hasattr(item, "callspec")}
    return [_row(e) for e in CATALOGUE if _row(e).id in selected]


@pytest.fixture(scope="module")
def answers(request, tmp_path_factory, reranker_path):
    """Every selected row's command, run once in this process (one after another): {row id: (answer, tmp)}.
    ``reranker_path``: the rows with ``reranker=ms_marco_minilm_local`` read that built test model."""
    tmp = tmp_path_factory.mktemp("catalogue")
    _prepare(tmp)
    done = {row.id: run_main(*_arguments(row, tmp)) for row in _selected(request, "test_catalogue")}
    return done, tmp


#: rows that also run as real ``python -m rag_eval`` subprocesses (the interpreter's start, its exit code)
SMOKES = ("key-typo", "no-primary-config", "malformed-list", "output-not-creatable", "limits-zero", "unknown-task")


@pytest.fixture(scope="module")
def subprocess_answers(request, tmp_path_factory, reranker_path):
    """The selected ``SMOKES`` rows as real subprocesses, run concurrently once: {row id: (CompletedProcess, tmp)}."""
    tmp = tmp_path_factory.mktemp("catalogue-subprocess")
    _prepare(tmp)
    rows = _selected(request, "test_catalogue_subprocess")

    def run(row: Row) -> subprocess.CompletedProcess:
        return subprocess.run(_command(row, tmp), cwd=ROOT, env=cli_env(), capture_output=True, text=True,
                              timeout=300)

    with ThreadPoolExecutor(max_workers=4) as pool:
        done = dict(zip([r.id for r in rows], pool.map(run, rows), strict=True))
    return done, tmp


@pytest.mark.subprocess
@pytest.mark.parametrize("row", [e for e in CATALOGUE if _row(e).id in SMOKES], ids=lambda r: r.id)
def test_catalogue_subprocess(row: Row, subprocess_answers):
    _check(row, *subprocess_answers)


@pytest.mark.parametrize("row", CATALOGUE, ids=_ids())
def test_catalogue(row: Row, answers):
    _check(row, *answers)


def _check(row: Row, done: dict, tmp: Path) -> None:
    proc = done[row.id]
    expected = row.line.replace("{tmp}", str(tmp))
    lines = proc.stderr.splitlines()
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == row.code, proc.stderr[-3000:]
    if not expected:
        assert lines == [], proc.stderr[-3000:]
    else:
        assert len(lines) == 1, proc.stderr[-3000:]
        assert lines[0].startswith(expected), lines[0]
    if row.id == "unsafe-names":  # sanitised into single path parts, all inside the output folder
        out = tmp / "out" / row.id
        results = [p for p in out.rglob("*.json") if p.name != "model_meta.json" and ".cache" not in p.parts
                   and "per_item" not in p.parts
                   and ".runs" not in p.parts]  # .runs/: the job's record
        assert [(p.relative_to(out).parts[0], p.name) for p in results] == [("tmp__escape", "etc.json")]
        assert all(p.resolve().is_relative_to(out.resolve()) for p in out.rglob("*"))
    if row.id == "unsafe-names-two-stage":  # the predictions file too: inside, under the safe name
        out = tmp / "out" / row.id
        found = list(tmp.rglob("*x_predictions.json"))  # anywhere under the fixture's folder
        assert found and all(p.resolve().is_relative_to(out.resolve()) and p.parent.name == "predictions"
                             and p.name == "x_predictions.json" for p in found), found
        assert "stage1" in {p.relative_to(out).parts[0] for p in found}



#: keys with no row, and why (free text, or answered by a row that names a neighbouring key)
NO_ROW = {
    "model.revision": "any string; a revision the hub lacks is the hub-model-offline row's line",
    "model.prompt": "free text (the query prompt)",
    "model.instruction": "free text (one instruction for every task)",
    "model.api_key": "free text, never written anywhere",
    "eval.dataset_path": "a folder path, read only by EvalScope's Custom* tasks",
}


def _typed_keys(args: tuple[str, ...]) -> set[str]:
    """Every dotted prefix of each override's key: ``model.encode_kwargs.batch_size=0`` -> model.encode_kwargs, ..."""
    keys = set()
    for arg in args:
        key = arg.split("=", 1)[0].lstrip("+~")
        parts = key.split(".")
        keys.update(".".join(parts[:n]) for n in range(1, len(parts) + 1))
    return keys


def test_every_config_key_has_a_row():
    """The catalogue grows with the config: a key of ModelConfig / EvalConfig (or a hybrid option) that no
    row types, and that NO_ROW does not explain, fails here. A model key counts as model.* or reranker.*."""
    import dataclasses

    from rag_eval.config.load import HYBRID_KEYS
    from rag_eval.config.schema import EvalConfig, ModelConfig

    typed = set().union(*(_typed_keys(_row(e).args) for e in CATALOGUE))
    typed |= {"model." + k.split(".", 1)[1] for k in typed if k.startswith("reranker.")}
    keys = {f"model.{f.name}" for f in dataclasses.fields(ModelConfig)}
    keys |= {f"eval.{f.name}" for f in dataclasses.fields(EvalConfig)}
    keys |= {f"model.hybrid.{k}" for k in HYBRID_KEYS}
    missing = sorted(keys - typed - set(NO_ROW))
    assert not missing, f"add a catalogue row (or a NO_ROW reason) for: {', '.join(missing)}"
    assert not set(NO_ROW) - keys, "NO_ROW names a key that no longer exists"


def test_encode_kwargs_follow_each_models_own_keywords(caplog):
    """EvalScope's eval-level encode_kwargs reach both models: a bi-encoder keyword on the cross-encoder is a
    warning (CrossEncoder.predict ignores it); a cross-encoder keyword on the bi-encoder is refused
    (SentenceTransformer.encode would raise at run time)."""
    import logging

    from rag_eval.config import load_config
    from rag_eval.errors import ConfigError

    def cfg(bi: dict, ce: dict) -> dict:
        return {"model": [{"model_name_or_path": "m", "encode_kwargs": bi},
                          {"model_name_or_path": "r", "is_cross_encoder": True, "encode_kwargs": ce}],
                "eval": {"tasks": ["T2Retrieval"]}}

    with caplog.at_level(logging.WARNING, logger="rag_eval"):
        run = load_config(cfg({"normalize_embeddings": True, "task": "retrieval"},
                              {"normalize_embeddings": True, "apply_softmax": False}))
    assert run.models[1].encode_kwargs == {"normalize_embeddings": True, "apply_softmax": False}
    assert [r.getMessage() for r in caplog.records] == [
        "model[1].encode_kwargs.normalize_embeddings is a SentenceTransformer.encode keyword: CrossEncoder.predict "
        "ignores it"]
    with pytest.raises(ConfigError) as info:
        load_config(cfg({"apply_softmax": True}, {}))
    assert str(info.value) == ("model[0].encode_kwargs.apply_softmax is a CrossEncoder.predict keyword, which "
                               "SentenceTransformer.encode refuses: set it in the reranker's encode_kwargs")
    with pytest.raises(ConfigError) as info:
        load_config(cfg({}, {"activation_fm": None}))
    assert str(info.value) == ("unknown CrossEncoder.predict keyword 'model[1].encode_kwargs.activation_fm': "
                               "did you mean 'model[1].encode_kwargs.activation_fn'?")
