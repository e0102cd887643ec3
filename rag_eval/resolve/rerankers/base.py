"""What a reranker format is: fixed hooks, one module per format (see ``__init__``'s registry).

A format says how a (query, document) pair becomes the model's token ids (template, truncation),
which side batches are padded on, and how one score is read from the model's last-position logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Encoded:
    """One pair as the model receives it."""

    ids: list[int]
    truncated: bool  # some of the query or document was cut to fit max_length


class Format(Protocol):
    name: str
    padding_side: str  # "left": the last position is every row's last token
    default_max_length: int  # the pair's token limit when max_seq_length is null
    default_instruction: str | None  # None: the format has no instruction slot
    task_instructions: bool  # a task's instruction in mteb's metadata (C-MTEB's) replaces the default
    kinds: tuple[str, ...]  # the transformers heads it reads: "causal_lm" and/or "sequence_classification"

    def prepare(self, tokenizer: Any, max_length: int, instruction: str | None) -> Any:
        """Whatever the format tokenises once per run (prefix, suffix, prompt ids): passed to encode."""

    def encode(self, tokenizer: Any, state: Any, query: str, document: str) -> Encoded:
        """The pair's token ids (no padding)."""

    def score(self, last_logits: Any, state: Any, kind: str) -> Any:
        """Scores (a 1-d float tensor) from the logits at each row's last real token."""
