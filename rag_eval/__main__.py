"""``python -m rag_eval [overrides]``: the Hydra app around :func:`rag_eval.run_task`.

Bad input ends with one line on stderr and exit 2; failed tasks with exit 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from rag_eval.errors import EXIT_TASK_FAILED, ConfigError

CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> int:
    from rag_eval.pipeline import run_task

    scores = run_task(cfg)
    return 0 if scores.ok else EXIT_TASK_FAILED


def cli() -> None:
    try:
        code = main()
    except ConfigError as exc:
        print(f"rag_eval: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    sys.exit(code or 0)


if __name__ == "__main__":
    cli()
