"""A YAML config file as plain containers (run_task's YAML path, EvalScope's ``eval_config`` path)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rag_eval.errors import ConfigError, one_line


def read_yaml(cfg: str | os.PathLike) -> Any:
    """A YAML file's content as plain containers; a missing or malformed file is one line."""
    path = Path(cfg)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found: pass an existing YAML path or a dict")
    from omegaconf import OmegaConf

    try:
        return OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception as exc:  # yaml errors are multi-line: keep the first line
        raise ConfigError(f"config file {path} is not valid YAML: {one_line(exc, first=True)}") from None
