"""``eval.dry_run``: load and sample every task, check everything, print the plan; load no model.

What a user wants before a 31-task run on a GPU box: every task's data found (on the hub or in its
cache), loaded, sampled (``limits``) and checked exactly as the run would (``prepare_task``: shape,
splits, the columns the scorer and the per-item capture read); then one table of tasks, rows per
split after ``limits``, the unique texts the stage-1 model would encode and how many of them its
embedding cache under ``output_folder`` already holds. Nothing is encoded, no model is loaded (the
model is only *resolved*: its folder and revision, which name its cache), nothing is written.

Texts are counted as mteb builds them (a document is ``title + " " + text``; queries and documents
get their prompts), keyed as the embedding cache keys them, so "cached" is exact for a local
sentence-transformers model. A classification task also encodes part of its training split (mteb's
few-shot sample, drawn per experiment): counted as an upper bound ("+ train <= N").
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag_eval import task_types
from rag_eval.config import RunConfig

logger = logging.getLogger(__name__)


@dataclass
class TaskPlan:
    """One task of a dry run."""

    task: str
    task_type: str
    source: str  # hub:dataset_id@revision, or the local folder
    rows: dict[str, str]  # split -> "kept/total rows" (or queries / docs)
    texts: int  # unique texts the stage-1 model would encode
    cached: int | None  # of them already in its embedding cache (None: no cache to look in)
    train_texts: int = 0  # classification: the training pool mteb samples from (an upper bound)
    error: str = ""


@dataclass
class DryRun:
    """The whole plan, printed by :func:`print_plan` and returned by ``run_task``."""

    model: str
    cache: str | None
    tasks: list[TaskPlan] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(t.error for t in self.tasks)

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "cache": self.cache, "tasks": [vars(t) for t in self.tasks]}


def dry_run(run: RunConfig, tasks: list[Any], output_folder: Path, alone: bool = False) -> DryRun:
    """Prepare every task as the run would (``prepare_task``), count its texts, unload it. ``alone``: the
    reranker runs alone (no Retrieval task, EvalScope's rule), so it is the model of the plan."""
    from rag_eval.errors import ConfigError
    from rag_eval.stages.runner import stages_of
    from rag_eval.stages.task_steps import prepare_task

    cfg = stages_of(run, alone, planning=True)[0].cfg  # the model of the run's first stage
    name, keys_of = _cache_lookup(cfg, tasks, output_folder)
    plan = DryRun(model=name, cache=str(keys_of.folder) if keys_of else None)
    for task in tasks:
        meta = task.metadata
        extra: dict[str, Any] = {}
        try:
            sample = prepare_task(task, run.eval, extra)
        except ConfigError as exc:  # a task that cannot run: named in the plan, the dry run exits 2 at the end
            plan.tasks.append(TaskPlan(meta.name, meta.type, "", {}, 0, None, error=str(exc)))
            continue
        try:
            texts = task_texts(task)
            train = _train_pool(task)
            source = extra.get("data", {})
            where = (f"{source.get('hub')}:{source.get('dataset_id')}@{str(source.get('revision'))[:12]}"
                     if source.get("hub") not in (None, "local") else f"local:{meta.dataset.get('path')}")
            cached = keys_of.count(texts) if keys_of is not None else None
            unique = sum(len(set(v)) for v in texts.values())
            plan.tasks.append(TaskPlan(meta.name, meta.type, where, _rows(sample), unique, cached, train))
        finally:
            if task.data_loaded:
                task.unload_data()
    return plan


def _rows(sample: dict[str, Any]) -> dict[str, str]:
    out = {}
    for split, kept in sample.get("splits", {}).items():
        if "queries" in kept:
            out[split] = f"{kept['queries']}/{kept['queries_total']} q, {kept['corpus']}/{kept['corpus_total']} docs"
        else:
            out[split] = f"{kept['rows']}/{kept['rows_total']} rows"
    return out


# --------------------------------------------------------------------------- texts, as mteb builds them


def task_texts(task: Any) -> dict[Any, list[str]]:
    """``{prompt_type: texts}`` the stage-1 model would encode for the task's evaluated splits (each
    split's texts as its task family lists them)."""
    texts: dict[Any, list[str]] = {}

    def add(kind: Any, values: list[Any]) -> None:
        texts.setdefault(kind, []).extend(str(v) for v in values if v is not None)

    for _subset, splits in task.dataset.items():
        for split in task.eval_splits:
            data = splits.get(split) if hasattr(splits, "get") else None
            if data is None:
                continue
            task_types.family(task.metadata.type, data).dry_run_texts(task, data, add)
    return texts


def _train_pool(task: Any) -> int:
    if not task_types.family(task.metadata.type).trains:
        return 0
    split = getattr(task, "train_split", "train")
    total = 0
    for splits in task.dataset.values():
        data = splits.get(split) if hasattr(splits, "get") else None
        total += len(data) if data is not None else 0
    return total


# --------------------------------------------------------------------------- the embedding cache, read only


class _CacheKeys:
    """The keys an embedding cache folder holds, and the key of a text as ``CachingEncoder`` makes it."""

    def __init__(self, folder: Path, prompts: dict[str, str]):
        from rag_eval.stages.vector_store import VectorStore

        self.folder = folder
        self.prompts = prompts
        self.keys = set(VectorStore(folder)) if folder.is_dir() else set()
        self.metadata: Any = None

    def count(self, texts: dict[Any, list[str]], task: Any = None) -> int:
        from rag_eval.stages.embedding_cache import text_key

        found = 0
        for kind, values in texts.items():
            for text in set(values):
                found += text_key(kind, self._prompt(kind), text) in self.keys
        return found

    def _prompt(self, kind: Any) -> str:
        if not self.prompts:
            return ""
        value = getattr(kind, "value", kind)
        return self.prompts.get(value, "") if value else ""


def _cache_lookup(cfg: Any, tasks: list[Any], output_folder: Path) -> tuple[str, _CacheKeys | None]:
    """The model's display name, and its embedding cache's keys (None: a model with no such cache, or
    caching off). Only resolves the model (its folder and revision), never loads it."""
    from rag_eval.errors import ConfigError
    from rag_eval.resolve.models import display_name, expected_name, model_prompts

    if cfg.is_cross_encoder or cfg.is_search or cfg.is_api:
        return expected_name(cfg), None
    from rag_eval.resolve.fingerprint import Fingerprint
    from rag_eval.resolve.hub import resolve_model

    try:
        resolved = resolve_model(cfg.model_name_or_path, cfg.hub, cfg.revision)
    except ConfigError as exc:
        logger.warning("dry run: the model cannot be resolved (%s): nothing is known to be cached", exc)
        return expected_name(cfg), None
    name = display_name(cfg, resolved)
    prompts = model_prompts(cfg) or _declared_prompts(resolved.path)
    if any("-" in k or k not in ("query", "document") for k in prompts or {}):
        return name, None  # per-task prompts: their keys follow mteb's validation, not counted here
    folder = Fingerprint(cfg, name, resolved.revision, prompts=prompts or None).embedding_cache_dir(output_folder)
    return name, _CacheKeys(folder, prompts or {})


def _declared_prompts(folder: Path) -> dict[str, str]:
    """The prompts a sentence-transformers model gets from its folder (``config_sentence_transformers.json``)
    over the library's defaults (``{"query": "", "document": ""}`` in sentence-transformers 6), as loading
    it would set them: empty ones too, they are part of the cache's settings."""
    from sentence_transformers import SentenceTransformer

    prompts = dict(getattr(SentenceTransformer, "_default_prompts", None) or {})
    path = Path(folder) / "config_sentence_transformers.json"
    try:
        prompts.update(json.loads(path.read_text(encoding="utf-8")).get("prompts") or {})
    except (OSError, ValueError):
        pass
    return {k: (v or "") for k, v in prompts.items()}


def print_plan(plan: DryRun, limits: int | None) -> None:
    """The plan as one table, and a closing line."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"rag_eval dry run: {plan.model}" + (f" (limits {limits})" if limits else ""))
    for col in ("type", "task", "data", "rows per split", "texts", "cached", "error"):
        table.add_column(col)
    for t in plan.tasks:
        texts = f"{t.texts}" + (f" + train <= {t.train_texts}" if t.train_texts else "")
        cached = "-" if t.cached is None else str(t.cached)
        table.add_row(t.task_type, t.task, t.source, "; ".join(f"{k}: {v}" for k, v in t.rows.items()), texts,
                      cached, t.error)
    Console(width=200).print(table)
    total = sum(t.texts for t in plan.tasks)
    cached = sum(t.cached or 0 for t in plan.tasks)
    bad = [t.task for t in plan.tasks if t.error]
    print(f"rag_eval: dry run: {len(plan.tasks) - len(bad)} of {len(plan.tasks)} tasks ready, {total} texts to "
          f"encode, {cached} already cached; no model loaded, nothing written"
          + (f"; NOT ready: {', '.join(bad)}" if bad else ""))
