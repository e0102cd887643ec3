"""Validate and normalise every accepted config shape into one typed :class:`RunConfig`.

Three shapes reach ``run_task``:

* EvalScope's plugin dict ``{"eval_backend": "RAGEval", "eval_config": {"tool": "MTEB",
  "model": [...], "eval": {...}}}`` (and its older flat form with the model keys beside the
  eval keys);
* the Hydra shape composed from ``conf/`` (``model``, ``reranker``, ``eval``);
* either of them as a YAML file.

Field names follow EvalScope's ``ModelArguments`` / ``EvalArguments`` so an EvalScope user's
dict works unchanged. Unknown keys are an error (with a "did you mean"), never dropped.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag_eval.errors import ConfigError

HUBS = ("huggingface", "modelscope")


def package_model_path(package: str) -> str:
    """Folder of a model shipped inside a Python package (``get_model_path()``)."""
    import importlib

    try:
        module = importlib.import_module(package)
    except ImportError:
        raise ConfigError(
            f"model package '{package}' is not installed: pip install {package.replace('_', '-')}"
        ) from None
    return str(module.get_model_path())


def _register_resolvers() -> None:
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("rag_eval.package_model"):
        OmegaConf.register_new_resolver("rag_eval.package_model", package_model_path)


def register_schemas() -> None:
    """Every model / eval key, with its default, as a ``base`` option of its Hydra group.

    Each group file extends ``base`` (``defaults: [base, _self_]``), so every key exists in the
    composed config: ``eval.limits=100`` works whichever eval file was chosen, and a typo such
    as ``eval.limts=100`` is refused by Hydra itself.
    """
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    if "base.yaml" in store.repo.get("model", {}):
        return
    store.store(group="model", name="base", node=dataclasses.asdict(ModelConfig()))
    store.store(group="reranker", name="base", node=dataclasses.asdict(ModelConfig(is_cross_encoder=True)))
    store.store(group="eval", name="base", node=dataclasses.asdict(EvalConfig()))

POOLING_MODES = ("cls", "lasttoken", "max", "mean", "mean_sqrt_len_tokens", "weightedmean")
MODEL_TYPES = ("sentence_transformer", "static")


@dataclass
class ModelConfig:
    """One model: a bi-encoder (default) or a cross-encoder (``is_cross_encoder: true``)."""

    model_name_or_path: str = ""
    # display name used in results; defaults to the hub id or the local folder's name
    name: str | None = None
    revision: str | None = None
    hub: str = "modelscope"  # where a hub id is looked up (EvalScope's default)
    is_cross_encoder: bool = False
    model_type: str = "sentence_transformer"
    pooling_mode: str | None = None  # None keeps the model's own pooling
    max_seq_length: int | None = None  # None keeps the model's own limit
    prompt: str = ""  # query prompt (EvalScope); documents get none
    prompts: dict[str, str] = field(default_factory=dict)  # mteb-style per-task prompts
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    config_kwargs: dict[str, Any] = field(default_factory=dict)
    encode_kwargs: dict[str, Any] = field(default_factory=dict)
    trust_remote_code: bool = False
    device: str | list[str] | None = None  # a list (cuda:0, cuda:1) encodes on all of them (bi-encoder)


@dataclass
class EvalConfig:
    """What to evaluate and where the results go (EvalScope's ``EvalArguments`` and more)."""

    tasks: list[Any] = field(default_factory=list)  # names, or dicts for local data
    dataset_path: str | None = None  # EvalScope: the folder of a Custom* task
    verbosity: int = 2
    output_folder: str = "outputs"
    overwrite_results: bool = True
    limits: int | None = None
    corpus_size: int | None = None
    seed: int = 42
    hub: str = "modelscope"  # where built-in tasks' data comes from
    top_k: int = 100
    raise_error: bool = False
    cache_embeddings: bool = True  # reuse bi-encoder embeddings across tasks, stages and runs


@dataclass
class RunConfig:
    models: list[ModelConfig]
    eval: EvalConfig

    @property
    def bi_encoder(self) -> ModelConfig:
        return self.models[0]

    @property
    def cross_encoder(self) -> ModelConfig | None:
        return self.models[1] if len(self.models) > 1 else None


def load_config(cfg: Any) -> RunConfig:
    """Turn a dict, DictConfig, YAML path or RunConfig into a validated RunConfig."""
    if isinstance(cfg, RunConfig):
        return cfg
    raw = _to_plain(cfg)
    if not isinstance(raw, dict):
        raise ConfigError(
            f"config must be a mapping, a DictConfig or a YAML path, got {type(cfg).__name__}"
        )
    models_raw, eval_raw = _split_shape(raw)
    models = [_build(ModelConfig, m, f"model[{i}]") for i, m in enumerate(models_raw)]
    run = RunConfig(models=models, eval=_build(EvalConfig, eval_raw, "eval"))
    _check(run)
    return run


def _to_plain(cfg: Any) -> Any:
    if isinstance(cfg, (str, Path)):
        path = Path(cfg)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found: pass an existing YAML path or a dict")
        from omegaconf import OmegaConf

        try:
            return OmegaConf.to_container(OmegaConf.load(path), resolve=True)
        except Exception as exc:  # yaml errors are multi-line: keep the first line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"config file {path} is not valid YAML: {first}") from None
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            return OmegaConf.to_container(cfg, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    return cfg


_HYDRA_KEYS = {"model", "reranker", "eval", "hydra"}


def _split_shape(raw: dict) -> tuple[list[dict], dict]:
    """Return (model dicts, eval dict) from either the EvalScope or the Hydra shape."""
    if "eval_backend" in raw or "eval_config" in raw:
        _unknown(raw, {"eval_backend", "eval_config", "work_dir"}, "")
        backend = raw.get("eval_backend", "RAGEval")
        if backend != "RAGEval":
            raise ConfigError(f"eval_backend is {backend!r}: rag_eval only runs 'RAGEval'")
        ec = dict(raw.get("eval_config") or {})
        tool = ec.pop("tool", "MTEB")
        if str(tool).upper() != "MTEB":
            raise ConfigError(f"eval_config.tool is {tool!r}: rag_eval runs the 'MTEB' tool only")
        if "model_name_or_path" in ec:  # EvalScope's older flat shape
            model_keys = {f.name for f in dataclasses.fields(ModelConfig)}
            model = {k: ec.pop(k) for k in list(ec) if k in model_keys and k != "hub"}
            model["hub"] = ec.get("hub", "modelscope")
            instructions = ec.pop("instructions", None) or {}
            if instructions:  # EvalScope's per-task query instructions
                model["prompts"] = {f"{t}-query": text for t, text in instructions.items()}
            return [model], ec
        _unknown(ec, {"model", "models", "eval"}, "eval_config.")
        if "model" in ec and "models" in ec:
            raise ConfigError("eval_config has both 'model' and 'models': keep one (EvalScope >= 1.x writes 'models')")
        models = ec.get("model", ec.get("models"))
        if isinstance(models, dict):
            models = [models]
        if not models:
            raise ConfigError("eval_config.model is empty: give a list with one bi-encoder")
        ev = _evalscope_eval(dict(ec.get("eval") or {}))
        shared = ev.pop("encode_kwargs", None) or {}  # EvalScope 1.x: eval-level encode_kwargs
        models = [_evalscope_model(m) for m in models]
        if shared:
            models = [{**m, "encode_kwargs": {**shared, **(m.get("encode_kwargs") or {})}}
                      if isinstance(m, dict) else m for m in models]
        return models, ev

    _unknown(raw, _HYDRA_KEYS, "")
    if not raw.get("model"):
        raise ConfigError("config has no 'model': pick one, e.g. model=minilm")
    models = raw["model"] if isinstance(raw["model"], list) else [raw["model"]]
    if raw.get("reranker"):
        models = [*models, raw["reranker"]]
    return list(models), dict(raw.get("eval") or {})


def _evalscope_model(model: Any) -> Any:
    """EvalScope 1.x ``MTEBModelConfig``: ``model_name`` stands for ``model_name_or_path``."""
    if isinstance(model, dict) and "model_name" in model:
        model = dict(model)
        name = model.pop("model_name")
        model.setdefault("model_name_or_path", name)
    return model


def _evalscope_eval(ev: dict) -> dict:
    """EvalScope 1.x ``MTEBEvalConfig`` keys in rag_eval's terms.

    ``task_names`` are ``tasks``; each ``custom_tasks`` entry (``name``, ``data_path``,
    ``eval_splits``: EvalScope's corpus/queries/qrels.jsonl folder) is a local Retrieval task;
    ``encode_kwargs`` apply to every model under its own (merged by the caller).
    """
    for key in ("task_types", "languages", "splits"):
        if ev.get(key) is not None:
            raise ConfigError(
                f"eval.{key} (EvalScope's task filter) is not supported: list the tasks by name in eval.tasks "
                "(or task_names), or pick an eval group such as eval=cmteb_retrieval"
            )
        ev.pop(key, None)
    tasks = list(ev.pop("tasks", None) or []) + list(ev.pop("task_names", None) or [])
    for i, custom in enumerate(ev.pop("custom_tasks", None) or []):
        where = f"eval.custom_tasks[{i}]"
        if not isinstance(custom, dict) or not custom.get("data_path"):
            raise ConfigError(f"{where} needs a data_path: the folder with corpus.jsonl, queries.jsonl, qrels.jsonl")
        _unknown(custom, {"name", "data_path", "eval_splits"}, f"{where}.")
        splits = custom.get("eval_splits") or ["test"]
        if len(splits) != 1:
            raise ConfigError(f"{where}.eval_splits has {len(splits)} splits: rag_eval evaluates one split per "
                              "task entry; list the task once per split under different names")
        tasks.append({"name": custom.get("name") or "CustomRetrieval", "type": "Retrieval",
                      "path": custom["data_path"], "split": splits[0]})
    if tasks:
        ev["tasks"] = tasks
    return ev


def _unknown(raw: dict, allowed: set[str], prefix: str) -> None:
    for key in raw:
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            fix = f"did you mean '{prefix}{hint[0]}'?" if hint else f"allowed: {', '.join(sorted(allowed))}"
            raise ConfigError(f"unknown config key '{prefix}{key}': {fix}")


def _build(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping of {cls.__name__} fields, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _unknown(raw, set(fields), f"{where}.")
    values = {}
    for key, value in raw.items():
        values[key] = _coerce(value, fields[key], f"{where}.{key}")
    return cls(**values)


def _coerce(value: Any, f: dataclasses.Field, where: str) -> Any:
    kind = str(f.type)
    if value is None:
        if "None" in kind:
            return None
        if f.default_factory is not dataclasses.MISSING:  # a null dict/list means "empty"
            return f.default_factory()
        raise ConfigError(f"{where} must not be null")
    if kind.startswith("int"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
    elif kind.startswith("dict"):
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return dict(value)
    elif kind.startswith("list"):
        if isinstance(value, (str, dict)):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return list(value)
    elif kind.startswith("str | list[str]") and isinstance(value, (list, tuple)):
        if not value or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{where} must be a device name or a non-empty list of them, got {value!r}")
        return list(value)
    elif kind.startswith("str"):
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return str(value)
    return value


def _check(run: RunConfig) -> None:
    """Cross-field rules that a type check cannot express."""
    ev = run.eval
    for i, m in enumerate(run.models):
        where = f"model[{i}]"
        if not m.model_name_or_path:
            raise ConfigError(f"{where}.model_name_or_path is empty: give a hub id or a local path")
        if m.hub not in HUBS:
            raise ConfigError(f"{where}.hub is {m.hub!r}: use one of {', '.join(HUBS)}")
        if m.pooling_mode is not None and m.pooling_mode not in POOLING_MODES:
            raise ConfigError(
                f"{where}.pooling_mode is {m.pooling_mode!r}: use one of {', '.join(POOLING_MODES)}"
                " or null for the model's own"
            )
        if m.model_type not in MODEL_TYPES:
            raise ConfigError(f"{where}.model_type is {m.model_type!r}: use one of {', '.join(MODEL_TYPES)}")
        if isinstance(m.device, list) and m.is_cross_encoder:
            raise ConfigError(
                f"{where}.device is a list: a cross-encoder runs on one device (e.g. device: cuda:0); "
                "device lists spread the bi-encoder only"
            )
        if m.max_seq_length is not None and m.max_seq_length <= 0:
            raise ConfigError(f"{where}.max_seq_length is {m.max_seq_length}: use a positive integer or null")
    if len(run.models) > 2:
        raise ConfigError(
            f"{len(run.models)} models given: give one bi-encoder, or a bi-encoder then a cross-encoder"
        )
    if run.models[0].is_cross_encoder:
        raise ConfigError(
            "model[0] is a cross-encoder: the first model must be a bi-encoder (stage 1); "
            "put the cross-encoder second"
        )
    if len(run.models) == 2 and not run.models[1].is_cross_encoder:
        raise ConfigError(
            "model[1] is a bi-encoder: two-stage needs a cross-encoder second "
            "(set is_cross_encoder: true) or drop it"
        )
    if ev.hub not in HUBS:
        raise ConfigError(f"eval.hub is {ev.hub!r}: use one of {', '.join(HUBS)}")
    if not ev.tasks:
        raise ConfigError("eval.tasks is empty: name at least one task, e.g. eval=demo")
    for key in ("limits", "corpus_size"):
        value = getattr(ev, key)
        if value is not None and value <= 0:
            raise ConfigError(f"eval.{key} is {value}: use a positive integer, or null for all")
    if ev.top_k <= 0:
        raise ConfigError(f"eval.top_k is {ev.top_k}: use a positive integer (default 100)")


_register_resolvers()
register_schemas()
