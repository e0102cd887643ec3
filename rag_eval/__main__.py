"""``rag-eval [overrides]`` / ``python -m rag_eval [overrides]``: the Hydra app around :func:`rag_eval.run_task`.

The config groups are read from the package (``pkg://rag_eval.conf``: the repository's ``conf/``,
shipped inside the wheel), so the command works wherever rag_eval is installed.
Bad input ends with one line on stderr and exit 2 (no traceback); failed tasks with exit 1.
"""

from __future__ import annotations

import sys
import warnings

if not sys.warnoptions:  # library deprecation chatter would bury the one-line errors on stderr
    warnings.simplefilter("ignore")

import hydra
from omegaconf import DictConfig

from rag_eval.config import register_schemas
from rag_eval.errors import EXIT_TASK_FAILED, ConfigError

register_schemas()  # the groups' `base` options must exist before Hydra composes

CONFIG_PATH = "pkg://rag_eval.conf"


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="config")
def main(cfg: DictConfig) -> None:
    from rag_eval.pipeline import run_task

    try:
        scores = run_task(cfg)
    except ConfigError as exc:  # Hydra would print a traceback: the one line is the message
        print(f"rag_eval: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    if not scores.ok:
        failed = ", ".join(sorted(scores.failed))
        print(f"rag_eval: {len(scores.failed)} task(s) FAILED: {failed} (see the table above)", file=sys.stderr)
        if not _in_sweep():  # a sweep goes on to its next job; the summary marks the failures
            sys.exit(EXIT_TASK_FAILED)


def _in_sweep() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


if __name__ == "__main__":
    main()
