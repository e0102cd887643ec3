"""What every family's ``limits`` sampler shares: a seeded order that ignores input order, content keys,
stratified picks (see :mod:`rag_eval.resolve.sampling` for what ``limits`` means per family)."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, defaultdict
from typing import Any

# the sampling warnings keep the logger name they had before the samplers moved here (log lines and the
# filters on them unchanged)
logger = logging.getLogger("rag_eval.resolve.sampling")


def _rank_key(seed: int, key: str) -> bytes:
    return hashlib.sha1(f"{seed}\0{key}".encode()).digest()


def seeded_order(keys: list[str], seed: int) -> list[str]:
    """``keys`` in a seeded pseudo-random order that does not depend on their input order."""
    return sorted(keys, key=lambda k: (_rank_key(seed, k), k))


def content_keys(texts: list[str]) -> list[str]:
    """Row keys from content; repeated rows get an occurrence count so each stays distinct."""
    seen: Counter[str] = Counter()
    keys = []
    for text in texts:
        keys.append(f"{text}\0{seen[text]}")
        seen[text] += 1
    return keys


def pick_rows(keys: list[str], n: int, seed: int) -> list[int]:
    index = {k: i for i, k in enumerate(keys)}
    return sorted(index[k] for k in seeded_order(list(index), seed)[:n])


def stratified_rows(keys: list[str], labels: list[Any], n: int, seed: int) -> list[int]:
    """``n`` rows with label proportions kept (largest remainder), each label seeded."""
    by_label: dict[Any, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[str(label)].append(i)
    total = len(labels)
    quotas = {lab: n * len(rows) / total for lab, rows in by_label.items()}
    counts = {lab: int(q) for lab, q in quotas.items()}
    for lab in sorted(quotas, key=lambda lab: (-(quotas[lab] - counts[lab]), lab))[: n - sum(counts.values())]:
        counts[lab] += 1
    chosen: list[int] = []
    for lab, rows in by_label.items():
        order = seeded_order([keys[i] for i in rows], seed)[: counts[lab]]
        pos = {keys[i]: i for i in rows}
        chosen.extend(pos[k] for k in order)
    return sorted(chosen)


def check_size(name: str, what: str, asked: int, available: int) -> int:
    if asked >= available:
        logger.warning("%s: limits %d >= %d %s: using all %d", name, asked, available, what, available)
        return available
    return asked


def column(data: Any, name: str) -> list:
    """A whole column as a Python list in one Arrow conversion (iterating a ``datasets`` Column
    converts row by row: 0.5 s for 50,000 pairs, more than encoding the sample)."""
    values = data[name]
    return values if isinstance(values, list) else values[:]


def flat_column(data: Any, name: str) -> list[Any]:
    """:func:`column`, an mteb 1.x one-row-of-lists split unwrapped to its values."""
    values = column(data, name)
    return values[0] if len(values) == 1 and isinstance(values[0], list) else values


def cell(value: Any) -> str:
    """A cell as key text; numbers by value, so ``1`` and ``1.0`` (int vs float column) agree."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(float(value))
    return str(value)


def sample_rows(data, limits, seed, where, texts, labels):
    total = len(data)
    if limits is None:
        return data, {"rows": total, "rows_total": total}
    n = check_size(where, "rows", limits, total)
    # a text is keyed with its label: a text repeated under two labels must not swap keys
    # with the other copy when the rows come in another order
    if labels is not None:
        texts = [f"{cell(label)}\0{text}" for text, label in zip(texts, labels, strict=True)]
    keys = content_keys([str(t) for t in texts])
    rows = stratified_rows(keys, list(labels), n, seed) if labels is not None else pick_rows(keys, n, seed)
    return data.select(rows), {"rows": len(rows), "rows_total": total}
