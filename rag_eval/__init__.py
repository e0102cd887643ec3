"""rag_eval: evaluate embedding models and rerankers on MTEB / C-MTEB tasks.

``run_task(cfg)`` is the plugin entry (EvalScope-style dict, DictConfig or YAML path);
``python -m rag_eval`` is the Hydra app around it.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["run_task", "__version__"]


def run_task(cfg: Any, **kwargs: Any):
    """Evaluate as configured; see :func:`rag_eval.pipeline.run_task`."""
    from rag_eval.pipeline import run_task as _run_task

    return _run_task(cfg, **kwargs)
