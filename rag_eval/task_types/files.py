"""What every local reader shares: jsonl rows with ``file:line`` errors, typed fields, labelled rows.

The readers themselves live with their task family (``retrieval``, ``pairs``, ``labelled``,
``clusters``); each returns the data in mteb 2.x's in-memory shape for its type, so a local folder
can back either a task declared in config or a built-in mteb task. Malformed input is a
:class:`DataError` naming ``file:line``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag_eval.errors import DataError


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a jsonl file; blank lines are skipped, anything else must be a JSON object."""
    return list(iter_jsonl(path))


def text_lines(path: Path) -> Iterator[str]:
    """The lines of a UTF-8 text file; a byte that is not UTF-8 is a :class:`DataError` naming ``file:line``."""
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{path}:{lineno} is not UTF-8 ({exc.reason} at byte {exc.start}): "
                    "re-encode the file as UTF-8"
                ) from None


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of :func:`read_jsonl` one at a time (a large corpus is never held as row dicts)."""
    try:
        for lineno, line in enumerate(text_lines(path), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{lineno} is not valid JSON ({exc.msg}): fix or remove the line") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{lineno} must be a JSON object, got {type(row).__name__}")
            row["__line__"] = lineno
            yield row
    except FileNotFoundError:
        raise DataError(f"{path} not found: the dataset folder must hold this file") from None


def get_field(row: dict, key: str, path: Path, kinds: tuple[type, ...] = (str,)) -> Any:
    if key not in row:
        raise DataError(f"{path}:{row['__line__']} has no '{key}' field: every row needs it")
    value = row[key]
    if not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds:
        names = "/".join(k.__name__ for k in kinds)
        raise DataError(f"{path}:{row['__line__']} field '{key}' must be {names}, got {value!r}")
    return value


def jsonl_splits(folder: Path) -> list[str]:
    """Splits of a jsonl folder: the ``*.jsonl`` file stems."""
    return sorted(p.stem for p in folder.glob("*.jsonl") if p.stem not in {"corpus", "queries", "train"})


def label_kinds(path: Path, rows: list[dict], kind_of: dict[str, tuple[str, Path, int]]) -> None:
    """Labels are all strings or all integers, within ``path`` and across the files already seen (``kind_of``
    holds the first label's kind, file and line)."""
    for row in rows:
        kind = "a string" if isinstance(row["label"], str) else "an integer"
        first = kind_of.setdefault("kind", (kind, path, row["__line__"]))
        if first[0] != kind:
            raise DataError(f"{path}:{row['__line__']} label {row['label']!r} is {kind}, but the label at "
                            f"{first[1]}:{first[2]} is {first[0]}: use one kind of label (all strings or all "
                            "integers) in every file of the task")


def label_rows(path: Path, text_key: str, out_text: str, out_label: str, kind_of: dict | None = None):
    from datasets import Dataset

    rows = read_jsonl(path)
    if not rows:
        raise DataError(f"{path} is empty: the split needs rows")
    texts = [get_field(r, text_key, path) for r in rows]
    labels = [get_field(r, "label", path, (int, str)) for r in rows]
    label_kinds(path, rows, {} if kind_of is None else kind_of)
    return Dataset.from_dict({out_text: texts, out_label: labels})


def sample_texts(folder: Path, limit: int = 200) -> list[str]:
    """A few texts from a local folder, to guess its language."""
    texts: list[str] = []
    for path in sorted(folder.rglob("*.jsonl"))[:2]:
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line, _ in zip(fh, range(limit), strict=False):
                texts.append(line)
    return texts
