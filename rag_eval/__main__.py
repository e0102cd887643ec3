"""``rag-eval [overrides]`` / ``python -m rag_eval [overrides]``: the Hydra app around :func:`rag_eval.run_task`.

The config groups are read from the package (``pkg://rag_eval.conf``: the repository's ``conf/``,
shipped inside the wheel), so the command works wherever rag_eval is installed.
Bad input, Hydra's own errors and a disk that cannot be written end with one line on stderr and
exit 2 (no traceback); failed tasks with exit 1; Ctrl-C / SIGTERM with one line and exit 130
(see :mod:`rag_eval.cli_checks`).
"""

# ruff: noqa: E402  (the signal handlers below come before the slow imports they guard)
from __future__ import annotations

import signal
import sys


def _interrupted_while_starting(signum: int, frame: object) -> None:
    """Ctrl-C / SIGTERM during the imports below (seconds: hydra, omegaconf): one line, exit 130."""
    print(f"rag_eval: interrupted ({signal.Signals(signum).name}) while starting, before any task started; "
          "nothing was written", file=sys.stderr)
    raise SystemExit(130)


# until cli_checks.run takes over (a signal the parent process ignores stays ignored)
if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _interrupted_while_starting)
if hasattr(signal, "SIGTERM") and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
    signal.signal(signal.SIGTERM, _interrupted_while_starting)

import re
import warnings
from pathlib import Path

if not sys.warnoptions:  # library deprecation chatter would bury the one-line errors on stderr
    warnings.simplefilter("ignore")

import hydra
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from rag_eval import cli_checks
from rag_eval.config import register_schemas
from rag_eval.errors import EXIT_BAD_INPUT, EXIT_TASK_FAILED, ConfigError

register_schemas()  # the groups' `base` options must exist before Hydra composes

CONFIG_PATH = "pkg://rag_eval.conf"


def main() -> None:
    """The console entry (``rag-eval``, ``python -m rag_eval``): the Hydra app, every error in one line."""
    cli_checks.run(app)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="config")
def app(cfg: DictConfig) -> None:
    from rag_eval.pipeline import run_task

    try:
        redact_saved_configs()
        scores = run_task(cfg, job=job_info())
    except (ConfigError, OmegaConfBaseException) as exc:  # Hydra would print a traceback: the one line
        print(cli_checks.PREFIX + cli_checks.error_line(exc), file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", EXIT_BAD_INPUT))
    if not scores.ok:
        failed = ", ".join(sorted(scores.failed))
        print(f"rag_eval: {len(scores.failed)} task(s) FAILED: {failed} (see the table above)", file=sys.stderr)
        if not _in_sweep():  # a sweep goes on to its next job; the summary marks the failures
            sys.exit(EXIT_TASK_FAILED)


_SECRET_INLINE = re.compile(r"(api_key=)(?!null\b)([^,'\"\s\]]+)")  # in override lists / override_dirname
_SECRET = re.compile(r"(?m)^(\s*(?:-\s*)?[\w.+~]*api_key\s*[:=]\s*)(?!null\s*$)(\S.*)$")


def redact_saved_configs() -> None:
    """Hydra saved the composed config and the overrides under ``.hydra/``: blank any ``api_key`` there
    (keys come from the config or the environment and are never written into results or logs)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    if not hydra_cfg.output_subdir:
        return
    folder = Path(hydra_cfg.runtime.output_dir) / hydra_cfg.output_subdir
    paths = [folder / name for name in ("config.yaml", "overrides.yaml", "hydra.yaml")]
    paths.append(Path(hydra_cfg.sweep.dir) / "multirun.yaml")  # a sweep's own copy
    for path in paths:
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            clean = _SECRET_INLINE.sub(r"\1***", _SECRET.sub(r"\1'***'", text))
            if clean != text:
                path.write_text(clean, encoding="utf-8")


def job_info():
    """This job as Hydra sees it: ``job <n>`` in a multirun, its overrides (keys blanked), its log file."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from rag_eval.results import JobInfo

    if not HydraConfig.initialized():
        return JobInfo()
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    num = hc.job.get("num") if multirun else None
    details = {
        "num": num, "id": hc.job.get("id"),
        "launcher": str(hc.launcher.get("_target_", "")).rpartition(".")[2],
        "overrides": [_SECRET_INLINE.sub(r"\1***", o) for o in hc.overrides.task],
        "log": str(Path(hc.runtime.output_dir) / f"{hc.job.name}.log"),
    }
    return JobInfo(label=f"job {num}" if multirun else "run", multirun=multirun, details=details)


def _in_sweep() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


if __name__ == "__main__":
    main()
