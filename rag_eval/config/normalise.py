"""Normalisation: any accepted config shape -> typed :class:`RunConfig` dataclasses, defaults filled in.

Three shapes reach ``run_task``: EvalScope's plugin dict, 0.x or 1.x (its aliases and defaults:
:mod:`rag_eval.config.evalscope`), the Hydra shape composed from ``conf/`` (``model``, ``reranker``,
``eval``, as a plain dict or a DictConfig), or either of them as a YAML file. Each section is merged
into ``OmegaConf.structured`` of its dataclass (:mod:`rag_eval.config.schema`), so OmegaConf owns the
types and the set of keys; its multi-line ``ValidationError`` becomes one :class:`ConfigError` line
naming the key and what it takes. Then the defaults a shape implies are filled in (an API model's
``model_name`` / ``api_base``, a search model's name, a hybrid's sub-models as typed models).

What the values mean together (ranges, choices, cross-field rules) is checked afterwards, by
:mod:`rag_eval.config.load`; nothing here judges a value beyond its type.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from rag_eval.config.evalscope import is_evalscope, split_evalscope, task_config_dict
from rag_eval.config.schema import EvalConfig, ModelConfig, RunConfig
from rag_eval.config.yaml_file import read_yaml
from rag_eval.errors import ConfigError, check_keys, one_line, unknown_key

_HYDRA_KEYS = {"model", "reranker", "eval", "hydra"}
#: how a type error names what a field takes (the dataclass annotation's outer type)
_KINDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
          "dict": "a mapping", "list": "a list"}


def typed_run(cfg: Any) -> RunConfig:
    """A dict, DictConfig or YAML path as a RunConfig whose fields have their declared types."""
    raw = _to_plain(cfg)
    if not isinstance(raw, dict):
        raise ConfigError(
            f"config must be a mapping, a DictConfig or a YAML path, got {type(cfg).__name__}"
        )
    models_raw, eval_raw = split_evalscope(raw) if is_evalscope(raw) else _split_hydra(raw)
    models = [typed(ModelConfig, m, f"model[{i}]") for i, m in enumerate(models_raw)]
    run = RunConfig(models=models, eval=typed(EvalConfig, eval_raw, "eval"))
    for i, m in enumerate(run.models):
        fill_model_defaults(m, f"model[{i}]")
    return run


def _to_plain(cfg: Any) -> Any:
    if isinstance(cfg, (str, os.PathLike)):
        return read_yaml(cfg)
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)
    if not isinstance(cfg, dict):  # EvalScope's TaskConfig (or one shaped like it): its dict form
        plain = task_config_dict(cfg)
        return cfg if plain is None else plain
    return task_config_dict(cfg) or cfg  # an EvalScope dict may hold config objects (an MTEBToolConfig)


def _split_hydra(raw: dict) -> tuple[list[Any], dict]:
    """(model dicts, eval dict) from the Hydra shape ``{model, reranker, eval}``."""
    check_keys(raw, _HYDRA_KEYS, "")
    if not raw.get("model"):
        raise ConfigError("config has no 'model': pick one, e.g. model=minilm")
    models = raw["model"] if isinstance(raw["model"], list) else [raw["model"]]
    if raw.get("reranker"):
        models = [*models, raw["reranker"]]
    return list(models), dict(raw.get("eval") or {})


def typed(cls: type, raw: Any, where: str) -> Any:
    """``raw`` merged into ``OmegaConf.structured(cls)``: an instance of ``cls``, or one ConfigError line.

    Before the merge, only shapes OmegaConf would refuse although they mean one thing: a null mapping or
    list is an empty one, a lone item where a list goes is a list of one, a path is its string.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError

    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping of {cls.__name__} fields, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    raw = {key: _shape(value, fields[key]) if key in fields else value for key, value in raw.items()}
    try:
        merged = OmegaConf.merge(OmegaConf.structured(cls, flags={"allow_objects": True}), raw)
        return OmegaConf.to_object(merged)
    except (ConfigKeyError, ConfigAttributeError) as exc:  # a key the dataclass does not have
        raise unknown_key(str(exc.key), fields, f"{where}.") from None
    except ValidationError as exc:
        raise _type_error(exc, fields, where) from None
    except OmegaConfBaseException as exc:  # e.g. an interpolation in a value that cannot be resolved
        key = f"{where}.{exc.full_key}" if exc.full_key else where
        raise ConfigError(f"{key}: {one_line(exc.msg or exc, first=True)}") from None


def _shape(value: Any, f: dataclasses.Field) -> Any:
    kind = str(f.type)
    if value is None and f.default_factory is not dataclasses.MISSING:  # a null dict/list means "empty"
        return f.default_factory()
    if isinstance(value, os.PathLike) and kind.startswith("str"):
        return os.fspath(value)
    if kind.startswith("list"):
        if isinstance(value, (str, dict, os.PathLike)):
            value = [value]
        if isinstance(value, (list, tuple)):
            return [os.fspath(v) if isinstance(v, os.PathLike) else v for v in value]
    return value


def _type_error(exc: Any, fields: dict[str, dataclasses.Field], where: str) -> ConfigError:
    """OmegaConf's multi-line ValidationError as one line: the key, what it takes, the value given."""
    key = str(exc.full_key or exc.key or "")
    field = fields.get(key)
    if field is None:  # inside a mapping or list value: OmegaConf's own words, on one line
        return ConfigError(f"{where}.{key} is {exc.value!r}: {one_line(exc.msg, first=True)}")
    if exc.value is None:
        return ConfigError(f"{where}.{key} must not be null")
    kind = _KINDS.get(str(field.type).split("[")[0].split("|")[0].strip(), f"a {field.type}")
    return ConfigError(f"{where}.{key} must be {kind}, got {exc.value!r}")


def fill_model_defaults(m: ModelConfig, where: str) -> None:
    """The settings a model's shape implies: an API model's id and server (as EvalScope fills them), a
    search model's name, a hybrid's sub-models as typed models with their defaults."""
    if m.is_api:
        _api_defaults(m, where)
    if m.is_search and not m.model_name_or_path:  # nothing to download: a name for the results
        m.model_name_or_path = "mteb/baseline-bm25s" if m.model_type == "bm25" else "hybrid"
    if m.model_type == "hybrid" and m.hybrid:
        subs = m.hybrid.get("models")
        if isinstance(subs, list):
            subs = [typed(ModelConfig, sub, f"{where}.hybrid.models[{j}]") for j, sub in enumerate(subs)]
            for j, sub in enumerate(subs):
                fill_model_defaults(sub, f"{where}.hybrid.models[{j}]")
        known = {"models": subs, "fusion": m.hybrid.get("fusion", "rrf"), "weights": m.hybrid.get("weights"),
                 "rrf_k": m.hybrid.get("rrf_k", 60), "sub_model_top_k": m.hybrid.get("sub_model_top_k")}
        m.hybrid = {**known, **{k: v for k, v in m.hybrid.items() if k not in known}}  # a typo stays, to be refused


def _api_defaults(m: ModelConfig, where: str) -> None:
    """An API model: fill model_name / model_name_or_path / api_base as EvalScope does."""
    m.model_name = m.model_name or m.model_name_or_path or None
    if not m.model_name:
        raise ConfigError(f"{where}.model_name is empty: an API model (api_base) needs the model id the server "
                          "serves")
    m.model_name_or_path = m.model_name_or_path or m.model_name
    if not m.api_base:
        if m.is_cross_encoder:
            raise ConfigError(f"{where}.api_base is missing: an API reranker needs the server's base URL, "
                              "e.g. http://127.0.0.1:7997/v1 (it posts to <api_base>/rerank)")
        m.api_base = os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
