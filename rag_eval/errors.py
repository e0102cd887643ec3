"""One exception type for every mistake a user can fix, and one for a run stopped by a signal.

A :class:`ConfigError` carries a single line that names the key, file or task at fault and
how to fix it. The CLI prints that line and exits 2; ``run_task`` lets it propagate. Anything
else is a bug (or a task failure, which the stages record instead of raising).

A run stopped by Ctrl-C (SIGINT) or SIGTERM raises :class:`RunInterrupted`, a ``KeyboardInterrupt``
whose one line says which tasks are finished on disk and which are not; the CLI prints it and exits 130.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable

EXIT_BAD_INPUT = 2
EXIT_TASK_FAILED = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell's code for Ctrl-C (SIGTERM exits the same way)


#: API keys in use (``register_secret``): cut from every message, record and log line
_SECRETS: set[str] = set()
#: a credential however it reaches a message (a server echoing the Authorization header, an override)
_CREDENTIAL = re.compile(r"(?i)\b(bearer\s+|api[_-]?key\s*[=:]\s*['\"]?)(?!\*\*\*)(?!null\b)[^\s'\",;)\]}]+")
REDACTED = "***"


def register_secret(value: str | None) -> None:
    """Remember an API key so that :func:`redact` cuts it from any text (messages, records, logs)."""
    if value and len(str(value)) >= 4:
        _SECRETS.add(str(value))


def redact(text: str) -> str:
    """``text`` without any registered API key nor any ``Bearer <token>`` / ``api_key=<value>``."""
    text = str(text)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _CREDENTIAL.sub(lambda m: m.group(1) + REDACTED, text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts API keys from each record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is logging's own business
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


class ConfigError(ValueError):
    """Bad input: the message is one line, names what is wrong and how to fix it (API keys redacted)."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str):
        super().__init__(redact(one_line(str(message))))


class HubError(ConfigError):
    """A model or dataset could not be resolved from its hub (offline, missing, no access)."""


class DataError(ConfigError):
    """A local dataset file is malformed (names file:line where it can)."""


class StorageError(ConfigError):
    """A file or folder under the output folder cannot be written (no space, read-only, no permission).

    Raised instead of the ``OSError``: the run stops with one line naming the path (nothing
    half-written is left; finished tasks stay on disk), not a task failure.
    """


#: while a run is under way: the one line a signal ends it with (``stop_line("SIGTERM")``), for the CLI's
#: signal watchdog when the main thread is inside C code and cannot take the signal (None: no run)
stop_line: Callable[[str], str] | None = None


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread by the CLI's handler so that it stops like Ctrl-C."""

    signal_name = "SIGTERM"


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by a signal; the message is one line: what is finished on disk, what is not."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, message: str, finished: list[str], unfinished: list[str]):
        super().__init__(redact(one_line(str(message))))
        self.finished, self.unfinished = finished, unfinished


def one_line(exc: BaseException | str, limit: int | None = None, *, first: bool = False) -> str:
    """An exception's (or a text's) message as one line: whitespace runs collapsed to one space, the
    exception's type name when the message is empty. ``first``: only its first non-blank line (a library's
    multi-line message keeps its gist); ``limit``: at most that many characters, ending in ``...`` when cut."""
    text = str(exc).strip()
    if first and text:
        text = text.splitlines()[0]
    text = " ".join(text.split())
    if not text and isinstance(exc, BaseException):
        text = type(exc).__name__
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def did_you_mean(word: str, choices: Iterable[str], n: int = 1, cutoff: float = 0.6) -> list[str]:
    """The names in ``choices`` closest to ``word`` (a typo's likely meaning), best first; [] when none is close."""
    import difflib

    return difflib.get_close_matches(str(word), sorted(str(c) for c in choices), n=n, cutoff=cutoff)


def unknown_key(key: str, allowed: Iterable[str], prefix: str, what: str = "config key") -> ConfigError:
    """The error for a key not in ``allowed``: ``unknown <what> '<prefix><key>'`` with a "did you mean" hint."""
    allowed = sorted(str(a) for a in allowed)
    hint = did_you_mean(key, allowed)
    fix = f"did you mean '{prefix}{hint[0]}'?" if hint else f"allowed: {', '.join(allowed)}"
    return ConfigError(f"unknown {what} '{prefix}{key}': {fix}")


def check_keys(raw: dict, allowed: set[str], prefix: str, what: str = "config key") -> None:
    """Refuse the first key of ``raw`` not in ``allowed``, with a "did you mean" hint."""
    for key in raw:
        if key not in allowed:
            raise unknown_key(key, allowed, prefix, what)
