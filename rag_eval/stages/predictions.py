"""mteb's predictions files (``<Task>_predictions.json``): stage 1's ranked lists, stage 2's own."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from rag_eval.errors import one_line

logger = logging.getLogger(__name__)


def readable_predictions(path: Path) -> bool:
    """Whether mteb's predictions file at ``path`` exists and parses; a corrupt one (a run killed while
    mteb wrote it in place) is logged once and removed, so its stage runs again."""
    if not path.is_file():
        return False
    try:
        with path.open(encoding="utf-8") as fh:
            if not isinstance(json.load(fh), dict):
                raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        logger.warning("removing unreadable predictions %s (%s): its stage runs again", path,
                       one_line(str(exc))[:200])
        try:
            path.unlink()
        except OSError:
            pass
        return False
    return True
