"""Any accepted config shape -> one validated :class:`RunConfig`.

Two steps. :mod:`rag_eval.config.normalise` turns the input (EvalScope's dict, 0.x or 1.x, the Hydra
shape, a DictConfig, a YAML path) into the typed dataclasses: OmegaConf owns the types and the keys
(an unknown key is an error with a "did you mean", never dropped), and the defaults a shape implies
are filled in. Then the semantic checks here: choices, ranges and cross-field rules. Every mistake is
one :class:`ConfigError` line that names the key and the fix.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from typing import Any

from rag_eval.config.normalise import typed_run
from rag_eval.config.schema import (
    BACKENDS,
    BM25_OPTIONS,
    BM25_TOKENIZERS,
    EXPORTED_BACKENDS,
    FUSIONS,
    HUBS,
    LIMITS_MODES,
    MODEL_TYPES,
    OUTPUT_DTYPES,
    POOLING_MODES,
    PRECISIONS,
    REFUSED_FORMATS,
    RERANK_SCHEMAS,
    SEARCH_BACKENDS,
    SUPPORTED_FORMATS,
    ModelConfig,
    RerankerFormat,
    RunConfig,
)
from rag_eval.errors import ConfigError, check_keys
from rag_eval.results.layout import task_file_name

logger = logging.getLogger(__name__)


def load_config(cfg: Any) -> RunConfig:
    """Turn a dict, DictConfig, YAML path or RunConfig into a validated RunConfig."""
    if isinstance(cfg, RunConfig):
        return cfg
    run = typed_run(cfg)
    _check(run)
    return run


def _check_device(m: ModelConfig, where: str) -> None:
    """device is typed Any (OmegaConf has no str-or-list type): a name, null, or a non-empty list of names."""
    value = m.device
    if value is None or isinstance(value, str) and value:
        return
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return
    raise ConfigError(f"{where}.device must be a device name or a non-empty list of them, got {value!r}")


def _check_top_k(ev: Any) -> None:
    """top_k is typed Any (OmegaConf has no int-or-list type): an integer or a non-empty list of them."""
    values = ev.top_k if isinstance(ev.top_k, list) else [ev.top_k]
    if not values or any(isinstance(v, bool) or not isinstance(v, int) for v in values):
        raise ConfigError(f"eval.top_k must be an integer or a list of integers, got {ev.top_k!r}")


#: keys of a local model that an API model has no use for: (key, its default)
_LOCAL_ONLY = (("pooling_mode", None), ("model_type", "sentence_transformer"), ("model_kwargs", {}),
               ("config_kwargs", {}), ("trust_remote_code", False), ("device", None), ("revision", None))


def _check_api(m: ModelConfig, where: str) -> None:
    """An API model (model_name / api_base filled in by normalise.fill_model_defaults): its server settings."""
    if not str(m.api_base).startswith(("http://", "https://")):
        raise ConfigError(f"{where}.api_base is {m.api_base!r}: use an http(s) URL such as http://127.0.0.1:7997/v1")
    if m.rerank_schema not in RERANK_SCHEMAS:
        raise ConfigError(f"{where}.rerank_schema is {m.rerank_schema!r}: use one of {', '.join(RERANK_SCHEMAS)}")
    for key, low in (("request_timeout", 0), ("max_retries", -1), ("concurrency", 0)):
        if getattr(m, key) <= low:
            raise ConfigError(f"{where}.{key} is {getattr(m, key)}: use a number above {low}")
    if m.dimensions is not None and m.dimensions <= 0:
        raise ConfigError(f"{where}.dimensions is {m.dimensions}: use a positive integer or null")
    for key, default in _LOCAL_ONLY:
        value = getattr(m, key)
        if value is not None and value != default:
            logger.warning("%s.%s does not apply to an API model (%s) and is ignored", where, key, m.api_base)


#: encode_kwargs rag_eval and mteb set themselves on every call -> the key to set instead
_RESERVED_ENCODE = {
    "prompt_name": "model.prompts (mteb picks the prompt per task)",
    "prompt": "model.prompt or model.prompts (mteb picks the prompt per task)",
    "pool": "model.device as a list, e.g. [cuda:0, cuda:1]",
    "chunk_size": "model.device as a list, e.g. [cuda:0, cuda:1]",
}
#: what an API model's client reads from encode_kwargs (rag_eval/resolve/api_models.py)
_API_ENCODE = ("batch_size", "show_progress_bar")
#: what sentence-transformers' ``**kwargs`` take besides the named keywords (SentenceTransformer.encode
#: refuses any other extra key unless the model's ``get_model_kwargs()`` names it, which needs the model)
_ST_EXTRA = ("task", "processing_kwargs")


def _encode_parameters(cross_encoder: bool) -> dict[str, Any]:
    """The keywords of the installed sentence-transformers' ``SentenceTransformer.encode`` (a bi-encoder)
    or ``CrossEncoder.predict`` (a cross-encoder), which mteb passes encode_kwargs on to: name -> annotation.

    Read from the installed release, so the list never goes stale (importing it costs seconds, so it
    is only read when a key other than batch_size / show_progress_bar is given).
    """
    import inspect

    from sentence_transformers import CrossEncoder, SentenceTransformer

    fn = CrossEncoder.predict if cross_encoder else SentenceTransformer.encode
    params = list(inspect.signature(fn).parameters.values())[2:]  # self, then the texts / pairs
    keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    found = {p.name: p.annotation for p in params if p.kind in keyword and p.name not in _RESERVED_ENCODE}
    return {**found, **{k: "Any" for k in _ST_EXTRA}}


def _split_alternatives(annotation: str) -> list[str]:
    """``"bool | None"`` -> ``["bool", "None"]``; a ``|`` inside brackets stays (``list[str | Path]``)."""
    parts, depth, current = [], 0, ""
    for ch in annotation.replace(" ", ""):
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "|" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return [*parts, current]


def _value_problem(annotation: Any, value: Any) -> str | None:
    """What ``value`` should be instead, judged by a parameter's annotation (None: fine, or not checkable)."""
    import ast

    wanted: list[str] = []
    for alt in _split_alternatives(str(annotation)):
        if alt == "None":
            ok, text = value is None, "null"
        elif alt == "bool":
            ok, text = isinstance(value, bool), "true or false"
        elif alt == "int":
            ok, text = isinstance(value, int) and not isinstance(value, bool), "an integer"
        elif alt == "float":
            ok, text = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
        elif alt == "str":
            ok, text = isinstance(value, str), "a string"
        elif alt.startswith(("Literal[", "typing.Literal[")):
            try:
                choices = ast.literal_eval("[" + alt[alt.index("[") + 1:-1] + "]")
            except (ValueError, SyntaxError):
                return None
            ok, text = value in choices, "one of " + ", ".join(repr(c) for c in choices)
        else:
            return None  # a type this check does not know: sentence-transformers will judge it
        if ok:
            return None
        wanted.append(text)
    return " or ".join(wanted)


def _check_encode_kwargs(m: ModelConfig, where: str) -> None:
    """encode_kwargs: batch_size a positive integer, and every key one that the model's encode (or
    predict) takes, with a "did you mean"; a key rag_eval sets itself points at the key to use.

    EvalScope's eval-level encode_kwargs reach both models, so a bi-encoder keyword on a cross-encoder
    (which ``CrossEncoder.predict`` ignores) is only a warning; a cross-encoder keyword on a bi-encoder
    is an error (``SentenceTransformer.encode`` refuses it at run time).
    """
    kwargs, prefix = m.encode_kwargs, f"{where}.encode_kwargs"
    size = kwargs.get("batch_size", 32)
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ConfigError(f"{prefix}.batch_size is {size!r}: use a positive integer (texts per encode call; "
                          "default 32)")
    bar = kwargs.get("show_progress_bar")
    if bar is not None and not isinstance(bar, bool):
        raise ConfigError(f"{prefix}.show_progress_bar is {bar!r}: use true, false or null (a terminal only)")
    for key in kwargs:
        if key in _RESERVED_ENCODE:
            raise ConfigError(f"{prefix}.{key} is set by rag_eval on every call: use {_RESERVED_ENCODE[key]}")
    rest = {k: v for k, v in kwargs.items() if k not in _API_ENCODE}
    if not rest:
        return
    own, other = _encode_parameters(m.is_cross_encoder), _encode_parameters(not m.is_cross_encoder)
    what, other_what = "SentenceTransformer.encode", "CrossEncoder.predict"
    if m.is_cross_encoder:
        what, other_what = other_what, what
    for key, value in rest.items():
        if key not in own and key not in other:
            check_keys({key: value}, set(own) | set(_API_ENCODE), f"{prefix}.", what=f"{what} keyword")
        if m.is_api:
            logger.warning("%s.%s does not apply to an API model (its client reads only %s) and is ignored",
                           prefix, key, " and ".join(_API_ENCODE))
        elif key not in own and m.is_cross_encoder:
            logger.warning("%s.%s is a %s keyword: %s ignores it", prefix, key, other_what, what)
        elif key not in own:
            raise ConfigError(f"{prefix}.{key} is a {other_what} keyword, which {what} refuses: set it in the "
                              "reranker's encode_kwargs")
        else:
            problem = _value_problem(own[key], value)
            if problem:
                raise ConfigError(f"{prefix}.{key} is {value!r}: use {problem}")


def _check_reranker_format(m: ModelConfig, where: str) -> None:
    names = [f.value for f in RerankerFormat]
    if m.reranker_format not in names:
        raise ConfigError(f"{where}.reranker_format is {m.reranker_format!r}: use one of {', '.join(names)}")
    if m.reranker_format in REFUSED_FORMATS:  # before any download
        raise ConfigError(f"{where}.reranker_format {m.reranker_format}: {REFUSED_FORMATS[m.reranker_format]}; "
                          f"supported: auto, {SUPPORTED_FORMATS}")
    if m.reranker_format != "auto" and not m.is_cross_encoder:
        raise ConfigError(f"{where}.reranker_format is {m.reranker_format}: it applies to a reranker "
                          "(is_cross_encoder: true) only; leave it auto")
    if m.reranker_format not in ("auto", "cross_encoder") and m.is_api:
        raise ConfigError(f"{where}.reranker_format is {m.reranker_format}: a served reranker is scored by its "
                          "server; leave it auto")


def _check_model(m: ModelConfig, where: str) -> None:
    _check_device(m, where)
    if m.is_api:
        _check_api(m, where)
    _check_encode_kwargs(m, where)
    if m.model_type not in MODEL_TYPES:
        raise ConfigError(f"{where}.model_type is {m.model_type!r}: use one of {', '.join(MODEL_TYPES)}")
    _check_retrieval_options(m, where)
    if not m.model_name_or_path:
        raise ConfigError(f"{where}.model_name_or_path is empty: give a hub id or a local path")
    if m.hub not in HUBS:
        raise ConfigError(f"{where}.hub is {m.hub!r}: use one of {', '.join(HUBS)}")
    if m.pooling_mode is not None and m.pooling_mode not in POOLING_MODES:
        raise ConfigError(
            f"{where}.pooling_mode is {m.pooling_mode!r}: use one of {', '.join(POOLING_MODES)}"
            " or null for the model's own"
        )
    if isinstance(m.device, list) and m.is_cross_encoder:
        raise ConfigError(
            f"{where}.device is a list: a cross-encoder runs on one device (e.g. device: cuda:0); "
            "device lists spread the bi-encoder only"
        )
    if m.max_seq_length is not None and m.max_seq_length <= 0:
        raise ConfigError(f"{where}.max_seq_length is {m.max_seq_length}: use a positive integer or null")
    _check_reranker_format(m, where)
    if m.is_search and m.is_cross_encoder:
        raise ConfigError(f"{where}: a {m.model_type} model retrieves (stage 1); it cannot be the reranker")
    if m.model_type == "bm25":  # up front, not when mteb builds it
        check_keys(m.model_kwargs, set(BM25_OPTIONS), f"{where}.model_kwargs.", what="BM25 option")
        tokenizer = m.model_kwargs.get("tokenizer") or "auto"
        if tokenizer not in BM25_TOKENIZERS:
            raise ConfigError(f"{where}.model_kwargs.tokenizer is {tokenizer!r}: use one of "
                              f"{', '.join(BM25_TOKENIZERS)}")
        k1, b = m.model_kwargs.get("k1"), m.model_kwargs.get("b")
        if k1 is not None and (not _is_number(k1) or k1 < 0):
            raise ConfigError(f"{where}.model_kwargs.k1 is {k1!r}: use a number >= 0 (bm25s' default 1.5)")
        if b is not None and (not _is_number(b) or not 0 <= b <= 1):
            raise ConfigError(f"{where}.model_kwargs.b is {b!r}: use a number from 0 to 1 (bm25s' default 0.75)")
    _check_precision(m, where)
    _check_backend(m, where)


def _check_backend(m: ModelConfig, where: str) -> None:
    """backend: a known runtime, for a local transformer without remote code, on the CPU."""
    if m.backend not in BACKENDS:
        raise ConfigError(f"{where}.backend is {m.backend!r}: use one of {', '.join(BACKENDS)}")
    if m.backend == "torch":
        return
    if m.is_api or m.is_search or m.model_type == "static":
        what = "an API model" if m.is_api else f"a {m.model_type} model"
        raise ConfigError(f"{where}.backend {m.backend} does not apply to {what} (no local transformer): use "
                          "backend=torch")
    if m.trust_remote_code:
        raise ConfigError(f"{where}.backend {m.backend} cannot export a model with remote code "
                          f"(trust_remote_code): use backend=torch")
    devices = m.device if isinstance(m.device, list) else [m.device]
    if isinstance(m.device, list) or any(d is not None and not str(d).startswith("cpu") for d in devices):
        raise ConfigError(f"{where}.backend is {m.backend} (one CPU process), but {where}.device is {m.device!r}:"
                          " use device=cpu, or backend=torch on CUDA")
    check_exported_backend(m, where)


def check_exported_backend(m: ModelConfig, where: str) -> None:
    """An exported backend (onnx, openvino): its runtime installed, a precision it runs. The machine's own
    capabilities (bf16 on this CPU) are the backend's to check when it loads (rag_eval/resolve/backends/)."""
    backend = EXPORTED_BACKENDS[m.backend]
    missing = [mod for mod in (backend.runtime, "onnx") if importlib.util.find_spec(mod) is None]
    if missing:
        raise ConfigError(f"{where}.backend is {m.backend}, which needs {' and '.join(missing)}: pip install "
                          f"'rag_eval[{m.backend}]'")
    if m.precision not in (None, *backend.precisions):
        runs = backend.precisions
        raise ConfigError(f"{where}.precision is {m.precision} with backend {m.backend}, which runs "
                          f"{' or '.join(runs)} on the CPU: use precision={'/'.join(runs)}, or {backend.instead}")


def _check_precision(m: ModelConfig, where: str) -> None:
    """precision: a known value, for a local torch model, not fighting model_kwargs' dtype, fp16 on CUDA,
    int8 on one CPU."""
    devices = m.device if isinstance(m.device, list) else [m.device]
    if m.precision is None:
        if is_fp16(m.model_kwargs) and any(str(d).startswith("cpu") for d in devices):
            raise ConfigError(f"{where}.model_kwargs.torch_dtype is float16, which needs a CUDA device ({where}.device "
                              f"is {m.device!r}): on CPU use precision=bf16")
        return
    if m.precision not in PRECISIONS:
        raise ConfigError(f"{where}.precision is {m.precision!r}: use one of {', '.join(PRECISIONS)} or null")
    if m.is_api or m.is_search or m.model_type == "static":
        what = "an API model" if m.is_api else f"a {m.model_type} model"
        raise ConfigError(f"{where}.precision does not apply to {what} (no local transformer): set it to null")
    if m.model_kwargs.get("torch_dtype", m.model_kwargs.get("dtype")) not in (None, "auto"):
        raise ConfigError(f"{where}.precision and {where}.model_kwargs.torch_dtype are both set: keep one")
    if m.precision == "fp16" and any(str(d).startswith("cpu") for d in devices):
        raise ConfigError(f"{where}.precision is fp16, which needs a CUDA device ({where}.device is {m.device!r}):"
                          " on CPU use precision=bf16")
    if m.precision == "int8" and (isinstance(m.device, list) or any(str(d).startswith("cuda") for d in devices)):
        raise ConfigError(f"{where}.precision is int8 (torch's dynamic quantisation: one CPU process), but "
                          f"{where}.device is {m.device!r}: use device=cpu, or precision=fp16/bf16 on CUDA")


def is_fp16(model_kwargs: dict[str, Any]) -> bool:
    """Whether ``model_kwargs`` load the weights in float16 (EvalScope's ``torch_dtype``, any spelling): the
    same rule as ``precision: fp16`` (CUDA only) applies."""
    dtype = model_kwargs.get("torch_dtype", model_kwargs.get("dtype"))
    return str(dtype).replace("torch.", "") in ("float16", "fp16", "half")


HYBRID_KEYS = {"models", "fusion", "weights", "rrf_k", "sub_model_top_k"}


def _check_retrieval_options(m: ModelConfig, where: str) -> None:
    """embed_dim, output_dtype, search_backend; a hybrid's sub-models (typed by normalise, checked as models)."""
    if m.embed_dim is not None and m.embed_dim <= 0:
        raise ConfigError(f"{where}.embed_dim is {m.embed_dim}: use a positive integer or null for all dimensions")
    if m.output_dtype is not None and m.output_dtype not in OUTPUT_DTYPES:
        raise ConfigError(f"{where}.output_dtype is {m.output_dtype!r}: use one of {', '.join(OUTPUT_DTYPES)} or null")
    if m.search_backend not in SEARCH_BACKENDS:
        raise ConfigError(f"{where}.search_backend is {m.search_backend!r}: use one of {', '.join(SEARCH_BACKENDS)}")
    if m.model_type != "hybrid":
        if m.hybrid:
            raise ConfigError(f"{where}.hybrid is set but model_type is {m.model_type!r}: set model_type: hybrid")
        return
    check_keys(m.hybrid, HYBRID_KEYS, f"{where}.hybrid.")
    subs = m.hybrid.get("models") or []
    if not isinstance(subs, list) or len(subs) < 2:
        raise ConfigError(f"{where}.hybrid.models needs at least two models to fuse (e.g. BM25 and a bi-encoder)")
    for j, sub_cfg in enumerate(subs):
        sub_where = f"{where}.hybrid.models[{j}]"
        if sub_cfg.model_type == "hybrid" or sub_cfg.is_cross_encoder:
            raise ConfigError(f"{sub_where} must be a bi-encoder or BM25 (not a hybrid or a cross-encoder)")
        _check_model(sub_cfg, sub_where)
    built = subs
    fusion = m.hybrid["fusion"]
    if fusion not in FUSIONS:
        raise ConfigError(f"{where}.hybrid.fusion is {fusion!r}: use one of {', '.join(FUSIONS)}")
    weights = m.hybrid["weights"]
    if weights is not None and (not isinstance(weights, list) or len(weights) != len(built)
                                or not all(isinstance(w, (int, float)) for w in weights)):
        raise ConfigError(f"{where}.hybrid.weights must be {len(built)} numbers (one per model) or null for equal")
    if weights is not None and (any(w < 0 for w in weights) or not any(w > 0 for w in weights)):
        raise ConfigError(f"{where}.hybrid.weights is {weights}: use numbers >= 0, at least one above 0 "
                          "(or null for equal)")
    rrf_k = m.hybrid["rrf_k"]
    if isinstance(rrf_k, bool) or not isinstance(rrf_k, int) or rrf_k < 0:
        raise ConfigError(f"{where}.hybrid.rrf_k is {rrf_k!r}: use an integer >= 0 (default 60)")
    top = m.hybrid["sub_model_top_k"]
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top <= 0):
        raise ConfigError(f"{where}.hybrid.sub_model_top_k is {top!r}: use a positive integer or null")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_task_files(ev: Any) -> None:
    """Two task entries whose names map to one result file (``Fz Task`` and ``Fz_Task``: ``Fz_Task.json``)
    would overwrite each other: refused before anything runs (mteb's registry names never collide)."""
    seen: dict[str, str] = {}
    for entry in ev.tasks:
        name = entry.get("name") if isinstance(entry, dict) else entry
        if not isinstance(name, str):
            continue
        file = task_file_name(name)
        if file in seen and seen[file] != name:
            raise ConfigError(f"eval.tasks names '{seen[file]}' and '{name}', which both map to the result file "
                              f"{file}: rename one")
        seen.setdefault(file, name)


def _check(run: RunConfig) -> None:
    """Cross-field rules that a type check cannot express."""
    ev = run.eval
    for i, m in enumerate(run.models):  # the Any-typed fields first, as their type errors
        _check_device(m, f"model[{i}]")
    _check_top_k(ev)
    for i, m in enumerate(run.models):
        _check_model(m, f"model[{i}]")
    if run.models[0].is_cross_encoder:
        raise ConfigError(
            "model[0] is a cross-encoder: the first model must be a bi-encoder (stage 1); "
            "put the cross-encoder second"
        )
    first_ce = next(i for i, m in enumerate([*run.models, None]) if m is None or m.is_cross_encoder)
    for i, m in enumerate(run.models[first_ce:], first_ce):
        if not m.is_cross_encoder:
            raise ConfigError(
                f"model[{i}] is a bi-encoder listed after the cross-encoder model[{first_ce}]: list the bi-encoders "
                "first, then the cross-encoders (every bi-encoder x cross-encoder pair runs two-stage)"
            )
    if ev.limits_mode not in LIMITS_MODES:
        raise ConfigError(f"eval.limits_mode is {ev.limits_mode!r}: use one of {', '.join(LIMITS_MODES)}")
    if ev.limits_mode == "evalscope" and ev.corpus_size is not None:
        raise ConfigError(f"eval.corpus_size is {ev.corpus_size} with limits_mode evalscope, whose corpus is the "
                          "judged documents only: drop corpus_size or use limits_mode seeded")
    if ev.hub not in HUBS:
        raise ConfigError(f"eval.hub is {ev.hub!r}: use one of {', '.join(HUBS)}")
    if not ev.tasks and not ev.benchmark and not ev.task_types and not ev.languages:
        raise ConfigError("eval.tasks is empty: name at least one task, e.g. eval=demo")
    _check_task_files(ev)
    for key, null in (("limits", "all"), ("corpus_size", "all"), ("corpus_chunk_size", "mteb's 50,000")):
        value = getattr(ev, key)
        if value is not None and value <= 0:
            raise ConfigError(f"eval.{key} is {value}: use a positive integer, or null for {null}")
    if min(ev.top_ks) <= 0:
        raise ConfigError(f"eval.top_k is {ev.top_k}: use a positive integer (default 100) or a list of them")
