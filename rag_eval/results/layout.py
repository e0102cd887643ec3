"""The one owner of the results tree's layout: where each result lives, and the way back.

mteb's ``ResultCache.get_task_result_path`` files a result under ``<model>/<revision>/<Task>.json``.
rag_eval adds the stage in front and, for stage 2, the experiment (which stage-1 model and top_k
fed the reranker), as mteb's ``experiments`` folders do::

    <root>/<model>/<revision>/<Task>.json                                  one-stage
    <root>/stage1/<model>/<revision>/<Task>.json                           two-stage, bi-encoder
    <root>/stage2/<model>/<revision>/experiments/<experiment>/<Task>.json  two-stage, reranker
    .../predictions/<Task>_predictions.json                                ranked lists beside them
    .../per_item/<Task>_per_item.json                                      per-query / per-pair data beside them
    <root>/.cache/<kind>/<model>/<revision>/<settings>/                    caches (embeddings, ...)
    <root>/.runs/<job>.json                                                each job's plan and progress

Every name that becomes a path part goes through :func:`safe_path_part`, so a model, revision,
stage or task name can never climb out of the root. :func:`parse` reads a result file's path
back into its :class:`ResultPlace`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

STAGES = ("stage1", "stage2")
EXPERIMENTS = "experiments"
PREDICTIONS = "predictions"
PER_ITEM = "per_item"
CACHE = ".cache"
RUNS = ".runs"  # one record per job (rag_eval.results.runs)
NO_REVISION = "no_revision_available"  # mteb's name for a model without a revision


def safe_path_part(text: str) -> str:
    """A single path component that cannot climb out of its parent folder."""
    part = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text).replace("/", "__")).strip("._")
    return part or "_"


def task_file_name(task: str) -> str:
    """``<Task>.json``: the result file of ``task`` (two names that give one file are refused up front)."""
    return safe_path_part(task) + ".json"


def predictions_file_name(task: str) -> str:
    """``<Task>_predictions.json``: what mteb names a task's predictions file, from the safe name (mteb
    builds it from the raw task name, which for a local task is whatever the user typed)."""
    return safe_path_part(task) + "_predictions.json"


def experiment_name(stage1_model: str, stage1_revision: str, top_k: int | None, variant: str = "",
                    reranker_variant: str = "") -> str:
    """The stage-2 experiment: the stage-1 model, revision and retrieval options, the top_k reranked,
    and the reranker's own options (its precision)."""
    options = f"_{variant}" if variant else ""
    own = f"_{reranker_variant}" if reranker_variant else ""
    return safe_path_part(f"{stage1_model}_{stage1_revision}{options}_top{top_k}{own}")


@dataclass(frozen=True)
class ResultPlace:
    """Where one model's results of one stage (and stage-2 experiment) live."""

    model: str
    revision: str
    stage: str = ""  # "" (one-stage) | "stage1" | "stage2"
    experiment: str = ""  # stage 2 only, see experiment_name

    def model_folder(self, root: Path) -> Path:
        """``[<stage>/]<model>/<revision>``: the folder of ``model_meta.json``."""
        base = Path(root) / safe_path_part(self.stage) if self.stage else Path(root)
        return base / safe_path_part(self.model) / safe_path_part(self.revision or NO_REVISION)

    def folder(self, root: Path) -> Path:
        """The folder of the result files (the experiment's, in stage 2)."""
        folder = self.model_folder(root)
        return folder / EXPERIMENTS / safe_path_part(self.experiment) if self.experiment else folder

    def task_path(self, root: Path, task: str) -> Path:
        return self.folder(root) / task_file_name(task)

    def predictions(self, root: Path) -> Path:
        """The folder mteb writes ``<Task>_predictions.json`` into (``prediction_folder``)."""
        return self.folder(root) / PREDICTIONS


def per_item_path(result_file: Path) -> Path:
    """``<folder>/per_item/<Task>_per_item.json`` beside the result file ``<folder>/<Task>.json``."""
    result_file = Path(result_file)
    return result_file.parent / PER_ITEM / f"{result_file.stem}_per_item.json"


def result_path(root: Path, model: str, revision: str, task: str, stage: str | None = None) -> Path:
    """``<root>/[<stage>/]<model>/<revision>/<Task>.json`` (no experiment)."""
    return ResultPlace(model, revision, stage or "").task_path(root, task)


def cache_folder(root: Path, kind: str, model: str, revision: str, settings: str) -> Path:
    """``<root>/.cache/<kind>/<model>/<revision>/<settings>``: one folder per model and settings."""
    return (Path(root) / CACHE / safe_path_part(kind) / safe_path_part(model) / safe_path_part(revision)
            / safe_path_part(settings))


def runs_folder(root: Path) -> Path:
    """``<root>/.runs``: the job records of every job that wrote into ``root``."""
    return Path(root) / RUNS


def parse(rel: Path) -> tuple[ResultPlace, str]:
    """The place and task stem of a result file, from its path relative to the root.

    The inverse of :meth:`ResultPlace.task_path` for rag_eval's trees; a plain mteb
    ``ResultCache`` tree (``<model>/<revision>/<Task>.json``, no stage) reads the same way. The
    parts are the sanitised folder names (a result file's ``rag_eval`` block holds the real ones).
    """
    parts = list(Path(rel).parts[:-1])
    experiment = ""
    if EXPERIMENTS in parts:
        i = len(parts) - 1 - parts[::-1].index(EXPERIMENTS)
        experiment = parts[i + 1] if i + 1 < len(parts) else ""
        parts = parts[:i]
    stage = parts[0] if parts and parts[0] in STAGES and len(parts) >= 3 else ""
    model = parts[-2] if len(parts) >= 2 else (parts[-1] if parts else "")
    revision = parts[-1] if len(parts) >= 2 else ""
    return ResultPlace(model, revision, stage, experiment), Path(rel).stem


def revision_and_experiment(path: Path) -> tuple[str, str]:
    """The revision and experiment folder names of a result file at ``path`` (any root)."""
    parts = Path(path).parent.parts
    if EXPERIMENTS in parts:
        i = len(parts) - 1 - parts[::-1].index(EXPERIMENTS)
        return parts[i - 1], parts[i + 1] if i + 1 < len(parts) else ""
    return (parts[-1] if parts else ""), ""


def model_folder_of(path: Path, place: ResultPlace) -> Path:
    """The model folder (``model_meta.json``) of a result file at ``path`` filed at ``place``."""
    folder = Path(path).parent
    return folder.parent.parent if place.experiment else folder
