"""One exception type for every mistake a user can fix.

A :class:`ConfigError` carries a single line that names the key, file or task at fault and
how to fix it. The CLI prints that line and exits 2; ``run_task`` lets it propagate. Anything
else is a bug (or a task failure, which the stages record instead of raising).
"""

from __future__ import annotations

EXIT_BAD_INPUT = 2
EXIT_TASK_FAILED = 1


class ConfigError(ValueError):
    """Bad input: the message is one line, names what is wrong and how to fix it."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class HubError(ConfigError):
    """A model or dataset could not be resolved from its hub (offline, missing, no access)."""


class DataError(ConfigError):
    """A local dataset file is malformed (names file:line where it can)."""


def check_keys(raw: dict, allowed: set[str], prefix: str, what: str = "config key") -> None:
    """Refuse the first key of ``raw`` not in ``allowed``, with a "did you mean" hint."""
    import difflib

    for key in raw:
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            fix = f"did you mean '{prefix}{hint[0]}'?" if hint else f"allowed: {', '.join(sorted(allowed))}"
            raise ConfigError(f"unknown {what} '{prefix}{key}': {fix}")
