"""The CLI's contract: every bad input and every fault ends in ONE line on stderr, no traceback.

Hydra handles its own errors before rag_eval's task function runs: an unknown group option
(``model=nosuch``), a malformed override (``eval.tasks=[LCQMC``), a value of the wrong type
(``eval.limits=ten``, refused because the config dataclasses are in Hydra's ConfigStore), a key
that does not exist, a run folder it cannot create. It prints several lines and exits 1. Here:

* :func:`run` calls the Hydra app with ``HYDRA_FULL_ERROR=1``, so Hydra raises instead of printing,
  and turns each such exception into one line (:func:`error_line`), exit 2. A user who set
  ``HYDRA_FULL_ERROR=1`` themselves gets Hydra's full traceback, as Hydra promises.
* :class:`StartChecks`, a Hydra callback (``hydra.callbacks`` in ``conf/config.yaml``), checks that
  ``eval.output_folder`` can be created and written before Hydra creates its run folder inside it.
* Ctrl-C (SIGINT) and SIGTERM stop the run with one line naming the finished and unfinished tasks,
  exit 130 (:class:`rag_eval.errors.RunInterrupted`); SIGTERM is raised as a ``KeyboardInterrupt``.

Only public Hydra / OmegaConf names are used: the exception classes of ``hydra.errors`` and
``omegaconf.errors``, their documented attributes, and ``hydra.experimental.callback.Callback``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError

from rag_eval.errors import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    ConfigError,
    Terminated,
    did_you_mean,
    one_line,
    redact,
    register_secret,
)

PREFIX = "rag_eval: error: "
GRAMMAR = "https://hydra.cc/docs/advanced/override_grammar/basic/"


class StartRefused(BaseException):
    """A start check's :class:`ConfigError`, carried past Hydra's callback runner (which turns an
    ``Exception`` raised in a callback into a warning and goes on) to :func:`run`."""

    def __init__(self, error: ConfigError):
        super().__init__(str(error))
        self.error = error


class StartChecks(Callback):
    """Before Hydra creates its run folder (``<output_folder>/.hydra/<time>``): the output folder
    must be creatable and writable, else one line naming it (exit 2), before any model loads."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_folders(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_folders(config)


def _check_folders(config: DictConfig) -> None:
    from rag_eval.results import check_writable

    try:
        folder = OmegaConf.select(config, "eval.output_folder")
    except OmegaConfBaseException:
        return  # an interpolation error: Hydra names it next
    if isinstance(folder, str) and folder:
        try:
            check_writable(folder)
        except ConfigError as error:
            raise StartRefused(error) from None


# --------------------------------------------------------------------------- signals


#: seconds the main thread has to take a signal before the watchdog answers for it (a library's C code,
#: e.g. a tokenizer on a huge text, runs no Python signal handler until it returns)
SIGNAL_GRACE_S = 1.5
_signals = {"seen": 0, "answered": 0}
_signals_lock = threading.Lock()


def _answered() -> None:
    with _signals_lock:
        _signals["answered"] += 1


def _raise_terminated(signum: int, frame: Any) -> None:
    _answered()
    raise Terminated()


def _raise_interrupt(signum: int, frame: Any) -> None:
    _answered()
    signal.default_int_handler(signum, frame)


def install_sigterm() -> None:
    """SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``) in the main thread: the run stops
    as on Ctrl-C (finished tasks recorded, one line, exit 130) instead of dying silently. Ctrl-C gets
    Python's own handler back (``__main__`` answers it itself while it imports), unless it is ignored.

    A watchdog thread hears each signal at once (``signal.set_wakeup_fd``): when the main thread has not
    taken it within ``SIGNAL_GRACE_S`` (it is inside C code), the watchdog prints the one line itself
    (what is finished on disk, from :data:`rag_eval.errors.stop_line`) and exits 130."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _raise_interrupt)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, _raise_terminated)
    _start_watchdog()


def _start_watchdog() -> None:
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    try:
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except ValueError:  # not the main thread of the main interpreter
        os.close(read_fd)
        os.close(write_fd)
        return
    threading.Thread(target=_watch, args=(read_fd,), name="rag_eval-signal-watchdog", daemon=True).start()


def _watch(read_fd: int) -> None:
    import time

    from rag_eval import errors

    while True:
        try:
            data = os.read(read_fd, 64)
        except OSError:
            return
        caught = [n for n in data if n in (signal.SIGINT, signal.SIGTERM)]
        if not caught:
            continue
        with _signals_lock:
            _signals["seen"] += len(caught)
            wanted = _signals["seen"]
        deadline = time.monotonic() + SIGNAL_GRACE_S
        while time.monotonic() < deadline and _signals["answered"] < wanted:
            time.sleep(0.02)
        if _signals["answered"] >= wanted:
            continue
        name = signal.Signals(caught[-1]).name
        line = None
        try:
            line = errors.stop_line(name) if errors.stop_line is not None else None
        except Exception:  # noqa: BLE001 - the line below still answers
            line = None
        if line is None:
            line = (f"interrupted ({name}) before any task started or while the reports were written; "
                    "finished result files stay on disk (rerun with eval.overwrite_results=false to resume)")
        try:
            sys.stderr.write(f"rag_eval: {redact(line)}\n")
            sys.stderr.flush()
        finally:
            os._exit(EXIT_INTERRUPTED)


# --------------------------------------------------------------------------- the wrapper


_KEY_OVERRIDE = re.compile(r"^(\+{0,2}[\w.]*api_key)=(?!null$)(?!\$\{)([^,\[\]{}()\s]+)$")
KEY_ENV_PREFIX = "RAG_EVAL_OVERRIDE_API_KEY_"


def keys_out_of_overrides(argv: list[str]) -> list[str]:
    """``argv`` with each ``...api_key=<key>`` override turned into ``...api_key=${oc.env:<VAR>}``, the key
    moved into that environment variable of this process (its jobs inherit it). Hydra then never sees
    the key: not in a multirun's launcher lines, the saved overrides, ``.hydra/`` or a job's log."""
    out = []
    for arg in argv:
        match = _KEY_OVERRIDE.match(arg)
        if match:
            var = f"{KEY_ENV_PREFIX}{len(out)}"
            os.environ[var] = match.group(2)
            register_secret(match.group(2))
            arg = f"{match.group(1)}=${{oc.env:{var}}}"
        out.append(arg)
    return out


def run(app: Callable[[], Any]) -> None:
    """Run the Hydra ``app``; Hydra's errors, storage faults and interrupts end in one line."""
    sys.argv[1:] = keys_out_of_overrides(sys.argv[1:])
    user_wants_traces = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises its errors instead of printing them
    logging.raiseExceptions = False  # a log line a full disk cannot take must not print a traceback
    install_sigterm()
    try:
        app()
    except StartRefused as refused:
        print(PREFIX + str(refused.error), file=sys.stderr)
        sys.exit(refused.error.exit_code)
    except KeyboardInterrupt as exc:  # RunInterrupted carries its own line (what finished, what not)
        from rag_eval.errors import RunInterrupted

        if isinstance(exc, RunInterrupted):
            line = str(exc)
        else:
            name = getattr(exc, "signal_name", "SIGINT")
            line = (f"interrupted ({name}) before any task started or while the reports were written; "
                    "finished result files stay on disk (rerun with eval.overwrite_results=false to resume)")
        print(f"rag_eval: {line}", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        line = None if user_wants_traces else error_line(exc)
        if line is None:
            raise  # a bug, or HYDRA_FULL_ERROR=1 from the user: the whole traceback
        print(PREFIX + redact(line), file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", EXIT_BAD_INPUT))


def error_line(exc: BaseException) -> str | None:
    """The one line for an error Hydra, OmegaConf or the disk raised around the task; None for anything else."""
    from rag_eval.results import storage_error

    if isinstance(exc, ConfigError):
        return str(exc)
    if isinstance(exc, MissingConfigException):  # before OSError: it is one too
        return _missing_option(exc)
    if isinstance(exc, OverrideParseException):
        return _malformed_override(exc)
    if isinstance(exc, HydraException):
        return _composition(exc)
    if isinstance(exc, OmegaConfBaseException):
        return _omegaconf(exc)
    if isinstance(exc, OSError):  # e.g. Hydra creating hydra.run.dir where it cannot
        where = exc.filename or "a file"
        error = storage_error(exc, where)
        if error is not None:
            return str(error)
        if exc.filename:
            return one_line(f"cannot create {exc.filename}: {exc.strerror or exc}: choose a folder you can write "
                         "(eval.output_folder=..., hydra.run.dir=...)")
    if isinstance(exc, (ValueError, TypeError)) and _raised_in(exc, ("hydra.", "omegaconf.")):
        # Hydra refuses some command lines with a plain ValueError (``=5``, ``--resolve`` without ``--cfg``)
        return one_line(f"{_first(exc)} (Hydra could not read the command line; rag-eval --help shows the syntax)")
    return None


def _raised_in(exc: BaseException, packages: tuple[str, ...]) -> bool:
    """Whether the innermost frame of ``exc``'s traceback belongs to one of ``packages``."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and str(tb.tb_frame.f_globals.get("__name__", "")).startswith(packages)


def _missing_option(exc: MissingConfigException) -> str:
    """``model=nosuch`` -> the group and its options (``base`` is the schema, not an option to pick)."""
    missing = exc.missing_cfg_file or ""
    group, _, option = missing.rpartition("/")
    options = [o for o in (exc.options or []) if o != "base"]
    if group and exc.options is not None:
        listed = ", ".join(options) if options else "none"
        return f"{group}={option}: no such option in group '{group}'; options: {listed}"
    first = one_line(exc, first=True) if str(exc).strip() else missing
    return one_line(f"{first.rstrip('.')} (rag-eval --help lists the config groups and their options)")


_LEXER = re.compile(r"^LexerNoViableAltException: (?P<text>.*)$")


def _malformed_override(exc: OverrideParseException) -> str:
    """The override as typed, and what the parser could not read in it."""
    lines = [line for line in str(exc.message).splitlines() if line.strip() and not line.startswith("See https")]
    if lines and lines[0] == f"Error parsing override '{exc.override}'":
        lines = lines[1:]
    problem = lines[0] if lines else "cannot be parsed"
    lexer = _LEXER.match(problem)
    if lexer and len(lines) > 1 and "^" in lines[1]:
        column = lines[1].index("^") - len("LexerNoViableAltException: ")
        text = lexer.group("text")
        bad = text[column] if 0 <= column < len(text) else "?"
        problem = f"unexpected character {bad!r} at position {column + 1}"
    problem = re.sub(r" expecting \{.*\}$", "", problem)  # ANTLR's list of every token it could take
    return one_line(f"malformed override '{exc.override}': {problem}; quote a value with brackets, commas or "
                 f"spaces, e.g. 'eval.tasks=[LCQMC,BQ]' (grammar: {GRAMMAR})")


def _composition(exc: HydraException) -> str:
    """A key that does not exist, or a value of the wrong type, named as the user typed it."""
    cause = exc.__cause__
    message = str(exc)
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and message.startswith("Could not override"):
        typed = re.match(r"Could not override '([^']+)'", message)
        group = typed.group(1).split(".")[0] if typed else ""
        if cause.full_key == group and group in _GROUPS:  # reranker.max_seq_length=128 with no reranker picked
            options = _group_options(group)
            typed_as = message.partition("use +")[2].strip() or typed.group(1)
            return one_line(f"{typed.group(1)}: no {group} is selected ({group}: null), so it has no keys: pick one "
                         f"first, e.g. {group}={options[0]} {typed_as}; options: {', '.join(options)}")
        return _unknown_key(cause)
    if isinstance(cause, ValidationError):
        override = message.removeprefix("Error merging override").strip()
        key = cause.full_key or override.partition("=")[0]
        expected = _expected(key)
        value = cause.value
        if expected:
            return one_line(f"{key} must be {expected}, got {value!r} (override '{override}')")
        return one_line(f"override '{override}': {_first(cause)}")
    detail = f": {_first(cause)}" if isinstance(cause, OmegaConfBaseException) else ""
    return one_line(f"{_first(exc)}{detail}")


_GROUPS = ("model", "reranker", "eval")


def _group_options(group: str) -> list[str]:
    """The options of one of rag_eval's config groups: its YAML files in the packaged ``conf``."""
    from importlib.resources import files

    folder = files("rag_eval.conf") / group
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")) or ["..."]


def _unknown_key(cause: OmegaConfBaseException) -> str:
    key = cause.full_key or str(cause.key)
    parent = cause.parent_node
    siblings = [str(k) for k in parent.keys()] if isinstance(parent, DictConfig) else []
    head, _, leaf = key.rpartition(".")
    prefix = f"{head}." if head else ""
    hint = did_you_mean(leaf, siblings)
    if hint:
        fix = f"did you mean '{prefix}{hint[0]}'?"
    elif siblings:
        fix = f"allowed: {', '.join(sorted(siblings))}"
    else:
        fix = "rag-eval --cfg job prints every key"
    return f"unknown config key '{key}': {fix}"


def _omegaconf(exc: OmegaConfBaseException) -> str:
    key = getattr(exc, "full_key", None)
    return one_line(f"{_first(exc)} (resolving {key})" if key else _first(exc))


def _first(exc: BaseException | None) -> str:
    """The message without OmegaConf's ``full_key: ...`` / ``object_type=...`` trailer lines."""
    if exc is None:
        return ""
    msg = getattr(exc, "msg", None) or str(exc)
    lines = [line for line in str(msg).splitlines()
             if line.strip() and not line.strip().startswith(("full_key:", "object_type=", "reference_type="))]
    return " ".join(line.strip() for line in lines) or type(exc).__name__


def _expected(key: str) -> str | None:
    """What a model / reranker / eval key takes, read from its config dataclass (None: not one of them)."""
    from rag_eval.config.schema import EvalConfig, ModelConfig

    group, _, name = key.partition(".")
    cls = {"model": ModelConfig, "reranker": ModelConfig, "eval": EvalConfig}.get(group)
    if cls is None or "." in name:
        return None
    field = {f.name: f for f in dataclasses.fields(cls)}.get(name)
    if field is None:
        return None
    names = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
             "dict": "a mapping, e.g. {key: value}", "list": "a list, e.g. [a, b]"}
    alternatives = str(field.type).replace(" ", "").split("|")
    kinds = [names.get(alt.split("[")[0], alt) for alt in alternatives if alt != "None"]
    nullable = "None" in alternatives
    return " or ".join(kinds) + (" or null" if nullable else "")
