"""Model configs -> mteb-compatible encoders built on sentence-transformers.

A bi-encoder is a ``SentenceTransformer`` (optionally rebuilt as Transformer + Pooling
[+ Normalize] for an explicit ``pooling_mode``) inside mteb's own
``SentenceTransformerEncoderWrapper``, so prompts and encoding follow mteb exactly. The
wrapper's ``ModelMeta`` names the model and its revision, which is where results are filed.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

from rag_eval.config import ModelConfig
from rag_eval.errors import ConfigError, one_line
from rag_eval.resolve.hub import ResolvedModel, resolve_model
from rag_eval.resolve.loaded import LoadedModel
from rag_eval.resolve.precision import apply_precision
from rag_eval.resolve.rerankers.detect import detect_format

logger = logging.getLogger(__name__)

_DTYPES = {"float16": "float16", "fp16": "float16", "half": "float16", "bfloat16": "bfloat16",
           "bf16": "bfloat16", "float32": "float32", "fp32": "float32", "float": "float32"}


def display_name(cfg: ModelConfig, resolved: ResolvedModel) -> str:
    """The model's name in results: ``name`` if set, else the hub id or the folder's name."""
    if cfg.name:
        return cfg.name
    if resolved.source == "local":
        return resolved.path.name
    return cfg.model_name_or_path


def expected_name(cfg: ModelConfig) -> str:
    """:func:`display_name` from the config alone, before the model is resolved (a job's first plan)."""
    if cfg.name:
        return cfg.name
    if cfg.is_api:
        return cfg.model_name or ""
    if cfg.is_search:
        from rag_eval.resolve.fingerprint import experiment_name
        from rag_eval.resolve.search_models import bm25_name, hybrid_name

        if cfg.model_type == "bm25":
            return bm25_name(cfg)
        return hybrid_name(cfg, [(expected_name(p), experiment_name(p)) for p in cfg.hybrid["models"]])
    path = Path(cfg.model_name_or_path).expanduser()
    return path.name if path.is_dir() else cfg.model_name_or_path


def torch_kwargs(model_kwargs: dict[str, Any]) -> dict[str, Any]:
    """EvalScope's ``torch_dtype`` strings -> what transformers takes (``dtype``)."""
    kwargs = dict(model_kwargs)
    dtype = kwargs.pop("torch_dtype", kwargs.pop("dtype", None))
    if dtype is not None:
        if dtype != "auto":
            import torch

            name = _DTYPES.get(str(dtype).replace("torch.", ""))
            if name is None:
                raise ConfigError(
                    f"model_kwargs.torch_dtype is {dtype!r}: use auto, float32, float16 or bfloat16"
                )
            dtype = getattr(torch, name)
        kwargs["dtype"] = dtype
    return kwargs


def load_device(cfg: ModelConfig) -> str | None:
    """The device a bi-encoder is loaded on: with a device list, the CPU (the encode pool moves it)."""
    return "cpu" if isinstance(cfg.device, list) else cfg.device


def _has_normalize(folder: Path) -> bool:
    modules = folder / "modules.json"
    if not modules.is_file():
        return False
    return any("Normalize" in m.get("type", "") for m in json.loads(modules.read_text()))


def _static_model(cfg: ModelConfig, folder: Path):
    """A static embedding model: a sentence-transformers folder, or a Model2Vec folder.

    Model2Vec's own ``normalize`` setting is kept (a Normalize module), so the embeddings are
    those ``model2vec.StaticModel.encode`` gives.
    """
    from sentence_transformers import SentenceTransformer

    if (folder / "modules.json").is_file():
        return SentenceTransformer(str(folder), device=load_device(cfg), local_files_only=True)
    from sentence_transformers.base.modules import Normalize
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding

    modules = [StaticEmbedding.from_model2vec(str(folder))]
    config = folder / "config.json"
    if config.is_file() and json.loads(config.read_text()).get("normalize"):
        modules.append(Normalize())
    return SentenceTransformer(modules=modules, device=load_device(cfg))


def model_positions(model: Any) -> int | None:
    """How many tokens ``model`` (a SentenceTransformer or CrossEncoder) can take: its transformer's
    ``max_position_embeddings`` (less RoBERTa's padding offset); None when it declares none."""
    modules = model.modules() if hasattr(model, "modules") else []
    config = next((m.config for m in modules if hasattr(getattr(m, "config", None), "max_position_embeddings")),
                  None)
    limit = getattr(config, "max_position_embeddings", None)
    if not isinstance(limit, int) or limit <= 0:
        return None
    if "roberta" in str(getattr(config, "model_type", "")) or "camembert" in str(getattr(config, "model_type", "")):
        limit -= int(getattr(config, "pad_token_id", 1) or 1) + 1  # positions start after the padding index
    return limit


def check_max_seq_length(cfg: ModelConfig, model: Any, where: str) -> None:
    """``max_seq_length`` beyond the model's positions fails deep in torch at the first long text: refused
    at load time, before anything runs (both encoders)."""
    limit = model_positions(model) if cfg.max_seq_length else None
    if limit is not None:
        _refuse_positions(cfg, limit, where)


def _refuse_positions(cfg: ModelConfig, limit: int, where: str) -> None:
    if cfg.max_seq_length and cfg.max_seq_length > limit:
        raise ConfigError(f"{where}.max_seq_length is {cfg.max_seq_length}, more than the {limit} positions of "
                          f"{cfg.model_name_or_path!r}: use at most {limit}, or null for the model's own")


def build_sentence_transformer(cfg: ModelConfig, folder: Path, where: str = "model[0]"):
    """The sentence-transformers model for ``cfg`` read from ``folder`` (no hub access)."""
    from sentence_transformers import SentenceTransformer

    model_kwargs = torch_kwargs(cfg.model_kwargs)
    if cfg.trust_remote_code:
        logger.warning("trust_remote_code is on for %s: its own code will run", cfg.model_name_or_path)
    try:
        if cfg.model_type == "static":
            if cfg.pooling_mode:
                raise ConfigError("pooling_mode does not apply to a static model (model_type: static): set it to null")
            model = _static_model(cfg, folder)
        elif cfg.pooling_mode:
            from sentence_transformers.base.modules import Normalize, Transformer
            from sentence_transformers.sentence_transformer.modules import Pooling

            transformer = Transformer(
                str(folder),
                model_kwargs={**model_kwargs, "trust_remote_code": cfg.trust_remote_code},
                config_kwargs={**cfg.config_kwargs, "trust_remote_code": cfg.trust_remote_code},
                processor_kwargs={"trust_remote_code": cfg.trust_remote_code},
                max_seq_length=cfg.max_seq_length,
            )
            modules = [transformer, Pooling(transformer.get_embedding_dimension(), pooling_mode=cfg.pooling_mode)]
            if _has_normalize(folder):
                modules.append(Normalize())
            model = SentenceTransformer(modules=modules, device=load_device(cfg))
        else:
            model = SentenceTransformer(
                str(folder),
                device=load_device(cfg),
                trust_remote_code=cfg.trust_remote_code,
                local_files_only=True,
                model_kwargs=model_kwargs or None,
                config_kwargs=cfg.config_kwargs or None,
            )
    except ConfigError:
        raise
    except Exception as exc:
        msg = one_line(exc, first=True)
        raise ConfigError(f"model {cfg.model_name_or_path!r} could not be loaded from {folder}: {msg}") from None
    if cfg.max_seq_length and cfg.model_type != "static":
        check_max_seq_length(cfg, model, where)
        model.max_seq_length = cfg.max_seq_length
    if cfg.embed_dim:  # Matryoshka: sentence-transformers keeps the first embed_dim dimensions
        full = model.get_embedding_dimension()
        if full and cfg.embed_dim > full:
            raise ConfigError(f"embed_dim {cfg.embed_dim} is more than the {full} dimensions of "
                              f"{cfg.model_name_or_path!r}: use at most {full}")
        model.truncate_dim = cfg.embed_dim
    return model


def model_prompts(cfg: ModelConfig) -> dict[str, str] | None:
    """mteb prompt dict: per-task prompts, plus EvalScope's ``prompt`` for queries.

    A bi-encoder's ``instruction`` replaces every prompt that reaches queries: only ``<key>-document``
    prompts are kept beside it (:func:`attach_task_prompts` also gives it to each symmetric task's texts);
    a reranker reads ``instruction`` itself (rag_eval/resolve/rerankers)."""
    prompts = dict(cfg.prompts)
    if cfg.prompt:
        prompts.setdefault("query", cfg.prompt)
    if cfg.instruction is not None and not cfg.is_cross_encoder:
        prompts = {k: v for k, v in prompts.items() if k.endswith("-document") or k == "document"}
        prompts["query"] = cfg.instruction
    return prompts or None


def attach_task_prompts(model: LoadedModel, tasks: list[Any]) -> None:
    """Give the encoder the per-task prompts of tasks declared from local data.

    mteb validates prompt keys against its own task registry and drops the rest, which would
    silently lose a prompt for a local task. Keys naming a task of this run (``Task`` or
    ``Task-query`` / ``Task-document``) are added back; a key naming nothing is an error.
    """
    from mteb.types import PromptType

    if model.parts:  # a hybrid: its parts' own prompts
        for part in model.parts:
            attach_task_prompts(part, tasks)
        return
    if model.config.is_search:  # BM25 takes no prompts
        return
    prompts = model_prompts(model.config) or {}
    encoder_prompts = dict(getattr(model.encoder, "model_prompts", None) or {})
    names = {t.metadata.name for t in tasks}
    types = {t.metadata.type for t in tasks}
    suffixes = tuple(f"-{p.value}" for p in PromptType)
    for key, text in prompts.items():
        if key in encoder_prompts:
            continue
        base = key[: -len(next(s for s in suffixes if key.endswith(s)))] if key.endswith(suffixes) else key
        if base in names or base in types:
            encoder_prompts[key] = text
        else:
            raise ConfigError(
                f"model.prompts key '{key}' names no task of this run: use a task name, a task type, "
                "'query' or 'document' (optionally '<task>-query' / '<task>-document')"
            )
    if model.config.instruction is not None:  # one instruction for every task: queries, or both sides if symmetric
        from rag_eval import task_types

        for task in tasks:
            spec = task_types.get(task.metadata.type)
            key = f"{task.metadata.name}-query" if spec is not None and spec.retrieves else task.metadata.name
            encoder_prompts[key] = model.config.instruction
    model.encoder.model_prompts = encoder_prompts or None


def _api_model(cfg: ModelConfig, where: str) -> LoadedModel:
    """A served model (``model_name`` / ``api_base``): checked against the server, nothing downloaded."""
    from mteb.models.abs_encoder import AbsEncoder
    from mteb.models.model_meta import ModelMeta

    from rag_eval.resolve import api_models

    client = api_models.ApiClient(cfg.api_base, api_models.api_key_from(cfg.api_key), timeout=cfg.request_timeout,
                                  max_retries=cfg.max_retries)
    client.check_model(cfg.model_name, where)
    if cfg.is_cross_encoder:  # before stage 1 runs, as /models is checked
        client.check_route(api_models.rerank_url(cfg.api_base), where, cfg.api_base)
    settings = {"dimensions": cfg.dimensions, "extra_body": cfg.extra_body} if not cfg.is_cross_encoder else {
        "schema": cfg.rerank_schema, "extra_body": cfg.extra_body}
    revision = api_models.api_revision(cfg.api_base, cfg.model_name, **settings)
    name = cfg.name or cfg.model_name
    meta = ModelMeta.create_empty(overwrites={"name": name, "revision": revision})
    # EvalScope's rule for a client without the server's tokenizer: max_seq_length x 3 characters
    max_chars = 3 * cfg.max_seq_length if cfg.max_seq_length else None
    if cfg.is_cross_encoder:
        encoder = api_models.ApiReranker(client, cfg.model_name, schema=cfg.rerank_schema,
                                         query_prefix=cfg.prompt or "", max_chars=max_chars,
                                         extra_body=cfg.extra_body, concurrency=cfg.concurrency, meta=meta)
    else:
        # the prompt keys mteb knows, as its own wrappers keep them (attach_task_prompts adds local tasks')
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            known, _ = AbsEncoder.validate_task_to_prompt_name(model_prompts(cfg), raise_for_invalid_keys=False)
        encoder = api_models.ApiEncoder(client, cfg.model_name, dimensions=cfg.dimensions,
                                        model_prompts=known or None, max_chars=max_chars,
                                        extra_body=cfg.extra_body, concurrency=cfg.concurrency, meta=meta)
    resolved = ResolvedModel(model_id=cfg.model_name, path=Path(), revision=revision, source="api")
    return LoadedModel(encoder=encoder, config=cfg, resolved=resolved, name=name, revision=revision)


def load_bi_encoder(cfg: ModelConfig) -> LoadedModel:
    """The stage-1 model: a bi-encoder (local or served), BM25, or a hybrid of them."""
    if cfg.is_search:
        from rag_eval.resolve.search_models import load_search_model

        return load_search_model(cfg, load_bi_encoder)
    from mteb.models import SentenceTransformerEncoderWrapper
    from mteb.models.model_meta import ModelMeta

    if cfg.is_api:
        return _api_model(cfg, "model[0]")
    resolved = resolve_model(cfg.model_name_or_path, cfg.hub, cfg.revision)
    check_max_positions(cfg, resolved.path, "model[0]")
    model = build_sentence_transformer(cfg, resolved.path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoder = SentenceTransformerEncoderWrapper(model, model_prompts=model_prompts(cfg))
        base = ModelMeta.from_sentence_transformer_model(model)
    name = display_name(cfg, resolved)
    encoder.mteb_model_meta = base.model_copy(update={"name": name, "revision": resolved.revision})
    return LoadedModel(encoder=encoder, config=cfg, resolved=resolved, name=name, revision=resolved.revision,
                       region=_compute(model, cfg, name, resolved.revision, "model[0]"))


def _compute(model: Any, cfg: ModelConfig, name: str, revision: str, where: str) -> Any:
    """Put ``model`` on its backend and precision; the region each call runs in (resolve/precision.py)."""
    if cfg.backend == "torch":
        return apply_precision(model, cfg)
    from rag_eval.resolve.backends import apply_backend

    apply_backend(model, cfg, name, revision, where)  # the precision is the runtime's (resolve/backends/)
    return None


def load_cross_encoder(cfg: ModelConfig) -> LoadedModel:
    """A sentence-transformers CrossEncoder inside mteb's ``CrossEncoderWrapper``.

    ``prompt`` (EvalScope) becomes the query prefix (an instruction such as MiniCPM-Reranker's);
    ``max_seq_length`` is the pair's token limit.
    """
    from mteb.models.model_meta import ModelMeta
    from mteb.models.sentence_transformer_wrapper import CrossEncoderWrapper
    from sentence_transformers import CrossEncoder

    if cfg.is_api:
        return _api_model(cfg, "model[1]")
    resolved = resolve_model(cfg.model_name_or_path, cfg.hub, cfg.revision)
    fmt = detect_format(cfg, resolved.path)  # before any weights are read
    check_max_positions(cfg, resolved.path, "model[1]")
    if cfg.trust_remote_code:
        logger.warning("trust_remote_code is on for %s: its own code will run", cfg.model_name_or_path)
    if fmt != "cross_encoder":
        return _llm_reranker(cfg, resolved, fmt)
    try:
        model = CrossEncoder(
            str(resolved.path),
            device=cfg.device,
            trust_remote_code=cfg.trust_remote_code,
            local_files_only=True,
            max_length=cfg.max_seq_length,
            model_kwargs=torch_kwargs(cfg.model_kwargs) or None,
            config_kwargs=cfg.config_kwargs or None,
        )
    except Exception as exc:
        msg = one_line(exc, first=True)
        raise ConfigError(
            f"cross-encoder {cfg.model_name_or_path!r} could not be loaded from {resolved.path}: {msg}"
        ) from None
    check_max_seq_length(cfg, model, "model[1]")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoder = CrossEncoderWrapper(model, query_prefix=cfg.prompt or "")
    name = display_name(cfg, resolved)
    encoder.mteb_model_meta = ModelMeta.create_empty(
        overwrites={"name": name, "revision": resolved.revision, "loader": CrossEncoderWrapper}
    )
    return LoadedModel(encoder=encoder, config=cfg, resolved=resolved, name=name, revision=resolved.revision,
                       region=_compute(model, cfg, name, resolved.revision, "model[1]"), reranker_format=fmt)


def check_max_positions(cfg: ModelConfig, folder: Path, where: str) -> None:
    """:func:`check_max_seq_length` before loading, from the folder's config.json (the same line)."""
    if not cfg.max_seq_length:
        return
    config = folder / "config.json"
    try:
        data = json.loads(config.read_text()) if config.is_file() else {}
    except (OSError, ValueError):
        data = {}
    limit = data.get("max_position_embeddings") if isinstance(data, dict) else None
    if not isinstance(limit, int) or limit <= 0:
        return
    if "roberta" in str(data.get("model_type", "")) or "camembert" in str(data.get("model_type", "")):
        limit -= int(data.get("pad_token_id", 1) or 1) + 1  # as model_positions counts them
    _refuse_positions(cfg, limit, where)


def _llm_reranker(cfg: ModelConfig, resolved: ResolvedModel, fmt: str) -> LoadedModel:
    """An LLM reranker scored in its authors' format (rag_eval/resolve/rerankers)."""
    from mteb.models.model_meta import ModelMeta

    from rag_eval.resolve.rerankers import FORMATS
    from rag_eval.resolve.rerankers.detect import architecture
    from rag_eval.resolve.rerankers.model import LlmReranker

    _, kind = architecture(resolved.path)
    try:
        encoder = LlmReranker(FORMATS[fmt], resolved.path, kind, cfg.max_seq_length, cfg.instruction,
                              device=cfg.device, model_kwargs=torch_kwargs(cfg.model_kwargs),
                              config_kwargs=cfg.config_kwargs, trust_remote_code=cfg.trust_remote_code,
                              prompts=model_prompts(cfg))
    except Exception as exc:
        msg = one_line(exc, first=True)
        raise ConfigError(f"reranker {cfg.model_name_or_path!r} ({fmt} format) could not be loaded from "
                          f"{resolved.path}: {msg}") from None
    name = display_name(cfg, resolved)
    encoder.mteb_model_meta = ModelMeta.create_empty(overwrites={"name": name, "revision": resolved.revision})
    return LoadedModel(encoder=encoder, config=cfg, resolved=resolved, name=name, revision=resolved.revision,
                       region=apply_precision(encoder.model, cfg), reranker_format=fmt)
