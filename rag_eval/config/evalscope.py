"""EvalScope's plugin dicts in rag_eval's terms.

``{"eval_backend": "RAGEval", "eval_config": {"tool": "MTEB", "model": [...], "eval": {...}}}``, its
1.x spelling (``models``, ``model_name``, ``task_names``, ``custom_tasks``, eval-level
``encode_kwargs``) and its older flat shape (model keys beside the eval keys) all become the
(model dicts, eval dict) pair that :func:`rag_eval.config.load_config` validates.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from typing import Any

from rag_eval.config.schema import ModelConfig
from rag_eval.errors import ConfigError, check_keys

logger = logging.getLogger(__name__)

#: EvalScope's defaults where rag_eval's differ, so its dicts give EvalScope's runs: MTEBModelConfig /
#: ModelArguments.max_seq_length, and MTEBEvalConfig.top_k (1.x) / EvalArguments.top_k (<= 1.8)
MODEL_DEFAULTS = {"max_seq_length": 512}
TOP_K_1X, TOP_K_LEGACY = 10, 5


#: EvalScope's TaskConfig keys where the RAGEval backend reads them: where the results go
WORK_DIR_KEYS = {"work_dir", "no_timestamp", "use_cache"}
#: the other TaskConfig keys (its native evaluation's), with EvalScope's defaults: the RAGEval backend never reads
#: them (in EvalScope either); a value other than these is logged as ignored, never dropped silently
TASK_CONFIG_DEFAULTS: dict[str, Any] = {
    "model": None, "model_id": None, "model_args": {}, "model_task": "text_generation", "chat_template": None,
    "datasets": [], "dataset_args": {}, "dataset_dir": None, "dataset_hub": "modelscope", "repeats": 1,
    "generation_config": {}, "eval_type": None, "limit": None, "eval_batch_size": 1, "rerun_review": False,
    "enable_progress_tracker": False, "ignore_errors": False, "debug": False, "seed": 42, "api_url": None,
    "api_key": None, "timeout": None, "stream": None, "judge": None, "analysis_report": False,
    "collect_perf": True, "sandbox": None, "use_sandbox": False, "sandbox_type": "docker",
    "sandbox_manager_config": {}, "agent_config": None, "evalscope_version": None,
    "judge_strategy": None, "judge_worker_num": None, "judge_model_args": {}, "analysis_report_language": None,
}
#: TaskConfig keys whose default depends on the machine or the release (a cache folder, a masked key, ...)
_ANY_VALUE = {"dataset_dir", "api_key", "judge", "evalscope_version", "generation_config", "sandbox_type",
              "judge_strategy", "judge_worker_num", "judge_model_args", "analysis_report_language"}


def is_evalscope(raw: dict) -> bool:
    return "eval_backend" in raw or "eval_config" in raw


def task_config_dict(obj: Any) -> dict | None:
    """The dict form of an object shaped like EvalScope's ``TaskConfig`` (its ``to_dict()``, pydantic
    ``model_dump()``, a dataclass's fields or ``__dict__``), or None when it is not one. Duck-typed:
    EvalScope is never imported."""
    plain = _plain_object(obj)
    if not isinstance(plain, dict) or not is_evalscope(plain):
        return None
    return plain


def _plain_object(obj: Any) -> Any:
    """A config object as plain dicts (recursively for ``eval_config`` and nested objects)."""
    if obj is None or isinstance(obj, (dict, list, tuple, str, int, float, bool, os.PathLike)):
        if isinstance(obj, dict):
            return {k: _plain_object(v) if not isinstance(v, (str, int, float, bool)) else v
                    for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [_plain_object(v) for v in obj]
        return obj
    for method in ("to_dict", "model_dump"):
        if callable(getattr(obj, method, None)):
            return _plain_object(getattr(obj, method)())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _plain_object(dataclasses.asdict(obj))
    if hasattr(obj, "__dict__"):
        return _plain_object({k: v for k, v in vars(obj).items() if not k.startswith("_")})
    return obj


def split_evalscope(raw: dict) -> tuple[list[Any], dict]:
    """(model dicts, eval dict) from an EvalScope plugin dict (or a TaskConfig's dict form)."""
    check_keys(raw, {"eval_backend", "eval_config", *WORK_DIR_KEYS, *TASK_CONFIG_DEFAULTS}, "")
    ignored = [k for k, default in TASK_CONFIG_DEFAULTS.items()
               if k in raw and k not in _ANY_VALUE and raw[k] not in (default, None, {}, [], "")]
    if ignored:
        logger.warning("%s: EvalScope TaskConfig key(s) of its native evaluation, which the RAGEval backend does not "
                       "read (in EvalScope either): ignored", ", ".join(ignored))
    backend = raw.get("eval_backend", "RAGEval")
    if backend != "RAGEval":
        raise ConfigError(f"eval_backend is {backend!r}: rag_eval only runs 'RAGEval'")
    ec = raw.get("eval_config") or {}
    if isinstance(ec, (str, os.PathLike)):  # EvalScope: eval_config may be a YAML file's path
        from rag_eval.config.yaml_file import read_yaml

        ec = read_yaml(ec)
    ec = dict(ec)
    models, ev = _split_eval_config(ec)
    folder = work_dir_folder(raw)
    if folder is not None:
        given = ev.get("output_folder")
        if given and os.path.normpath(str(given)) != os.path.normpath(folder):
            logger.warning("eval.output_folder %s is replaced by work_dir: results go to %s (EvalScope's rule: "
                           "work_dir is where a TaskConfig's results go)", given, folder)
        ev["output_folder"] = folder
        logger.info("work_dir: results go to %s", folder)
    return models, ev


def work_dir_folder(raw: dict) -> str | None:
    """Where EvalScope writes a run's results: ``use_cache`` (a run to resume) if set, else ``work_dir``, plus a
    ``<YYYYmmdd_HHMMSS>`` folder unless ``no_timestamp``; None when neither key is given."""
    if raw.get("use_cache"):
        return str(raw["use_cache"])
    if not raw.get("work_dir"):
        return None
    if raw.get("no_timestamp"):
        return str(raw["work_dir"])
    return os.path.join(str(raw["work_dir"]), time.strftime("%Y%m%d_%H%M%S"))


def _split_eval_config(ec: dict) -> tuple[list[Any], dict]:
    tool = ec.pop("tool", "MTEB")
    if str(tool).upper() != "MTEB":
        raise ConfigError(f"eval_config.tool is {tool!r}: rag_eval runs the 'MTEB' tool only")
    if "model_name_or_path" in ec:  # EvalScope's older flat shape
        models, ev = _flat(ec)
        ev.setdefault("top_k", TOP_K_LEGACY)
        return [{**MODEL_DEFAULTS, **m} for m in models], ev
    check_keys(ec, {"model", "models", "eval"}, "eval_config.")
    if "model" in ec and "models" in ec:
        raise ConfigError("eval_config has both 'model' and 'models': keep one (EvalScope >= 1.x writes 'models')")
    models = ec.get("model", ec.get("models"))
    if isinstance(models, dict):
        models = [models]
    if not models:
        raise ConfigError("eval_config.model is empty: give a list with one bi-encoder")
    ev = _eval(dict(ec.get("eval") or {}))
    ev.setdefault("top_k", TOP_K_1X if "models" in ec else TOP_K_LEGACY)
    # EvalScope 1.x: eval-level encode_kwargs go to every encode / predict call, over the model's own
    shared = ev.pop("encode_kwargs", None) or {}
    models = [{**MODEL_DEFAULTS, **_model(m)} if isinstance(m, dict) else m for m in models]
    if shared:
        models = [{**m, "encode_kwargs": {**(m.get("encode_kwargs") or {}), **shared}}
                  if isinstance(m, dict) else m for m in models]
    return models, ev


def _flat(ec: dict) -> tuple[list[Any], dict]:
    """The older flat shape: the model's keys sit beside the eval keys."""
    model_keys = {f.name for f in dataclasses.fields(ModelConfig)}
    model = {k: ec.pop(k) for k in list(ec) if k in model_keys and k != "hub"}
    model["hub"] = ec.get("hub", "modelscope")
    instructions = ec.pop("instructions", None) or {}
    if instructions:  # EvalScope's per-task query instructions
        model["prompts"] = {f"{t}-query": text for t, text in instructions.items()}
    return [model], ec


def _model(model: Any) -> Any:
    """EvalScope 1.x ``MTEBModelConfig``: ``model_name`` (with ``api_base``, ``api_key``, ``dimensions``)
    makes a served API model, and fills an empty ``model_name_or_path`` (EvalScope's validator does)."""
    if isinstance(model, dict) and model.get("model_name") and not model.get("model_name_or_path"):
        model = {**model, "model_name_or_path": model["model_name"]}
    return model


def _eval(ev: dict) -> dict:
    """EvalScope 1.x ``MTEBEvalConfig`` keys in rag_eval's terms.

    ``task_names`` are ``tasks``; ``task_types`` / ``languages`` select from mteb's registry when no
    task is named (EvalScope ignores them otherwise, and so does rag_eval, with a warning); each
    ``custom_tasks`` entry (``name``, ``data_path``, ``eval_splits``: EvalScope's
    corpus/queries/qrels.jsonl folder) is a local Retrieval task; ``encode_kwargs`` apply to every
    model over its own (merged by the caller); ``splits`` has no effect (logged).
    """
    if ev.pop("splits", None) is not None:
        logger.warning("eval.splits has no effect (EvalScope declares it and never reads it): each task runs "
                       "its own eval splits")
    filters = {k: ev.pop(k) for k in ("task_types", "languages") if ev.get(k)}
    for k in ("task_types", "languages"):
        ev.pop(k, None)
    if filters and (ev.get("tasks") or ev.get("task_names")):
        logger.warning("eval.%s ignored: task_names are given, and EvalScope then runs exactly those",
                       " / eval.".join(filters))
    else:
        ev.update(filters)  # EvalScope: mteb.get_tasks(task_types=..., languages=...) over mteb's registry
    tasks = list(ev.pop("tasks", None) or []) + list(ev.pop("task_names", None) or [])
    for i, custom in enumerate(ev.pop("custom_tasks", None) or []):
        where = f"eval.custom_tasks[{i}]"
        if not isinstance(custom, dict) or not custom.get("data_path"):
            raise ConfigError(f"{where} needs a data_path: the folder with corpus.jsonl, queries.jsonl, qrels.jsonl")
        check_keys(custom, {"name", "data_path", "eval_splits"}, f"{where}.")
        splits = custom.get("eval_splits") or ["test"]
        if len(splits) != 1:
            raise ConfigError(f"{where}.eval_splits has {len(splits)} splits: rag_eval evaluates one split per "
                              "task entry; list the task once per split under different names")
        tasks.append({"name": custom.get("name") or "CustomRetrieval", "type": "Retrieval",
                      "path": custom["data_path"], "split": splits[0]})
    if tasks:
        ev["tasks"] = tasks
    return ev
