"""EvalScope's plugin dicts in rag_eval's terms.

``{"eval_backend": "RAGEval", "eval_config": {"tool": "MTEB", "model": [...], "eval": {...}}}``, its
1.x spelling (``models``, ``model_name``, ``task_names``, ``custom_tasks``, eval-level
``encode_kwargs``) and its older flat shape (model keys beside the eval keys) all become the
(model dicts, eval dict) pair that :func:`rag_eval.config.load_config` validates.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rag_eval.config.schema import ModelConfig
from rag_eval.errors import ConfigError, check_keys


def is_evalscope(raw: dict) -> bool:
    return "eval_backend" in raw or "eval_config" in raw


def split_evalscope(raw: dict) -> tuple[list[Any], dict]:
    """(model dicts, eval dict) from an EvalScope plugin dict."""
    check_keys(raw, {"eval_backend", "eval_config", "work_dir"}, "")
    backend = raw.get("eval_backend", "RAGEval")
    if backend != "RAGEval":
        raise ConfigError(f"eval_backend is {backend!r}: rag_eval only runs 'RAGEval'")
    ec = dict(raw.get("eval_config") or {})
    tool = ec.pop("tool", "MTEB")
    if str(tool).upper() != "MTEB":
        raise ConfigError(f"eval_config.tool is {tool!r}: rag_eval runs the 'MTEB' tool only")
    if "model_name_or_path" in ec:  # EvalScope's older flat shape
        return _flat(ec)
    check_keys(ec, {"model", "models", "eval"}, "eval_config.")
    if "model" in ec and "models" in ec:
        raise ConfigError("eval_config has both 'model' and 'models': keep one (EvalScope >= 1.x writes 'models')")
    models = ec.get("model", ec.get("models"))
    if isinstance(models, dict):
        models = [models]
    if not models:
        raise ConfigError("eval_config.model is empty: give a list with one bi-encoder")
    ev = _eval(dict(ec.get("eval") or {}))
    shared = ev.pop("encode_kwargs", None) or {}  # EvalScope 1.x: eval-level encode_kwargs
    models = [_model(m) for m in models]
    if shared:
        models = [{**m, "encode_kwargs": {**shared, **(m.get("encode_kwargs") or {})}}
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
    """EvalScope 1.x ``MTEBModelConfig``: ``model_name`` stands for ``model_name_or_path``."""
    if isinstance(model, dict) and "model_name" in model:
        model = dict(model)
        name = model.pop("model_name")
        model.setdefault("model_name_or_path", name)
    return model


def _eval(ev: dict) -> dict:
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
