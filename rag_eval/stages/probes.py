"""What a bi-encoder's tokenizer says about the texts it is given, read before they are encoded.

* truncation: how many texts exceed the model's ``max_seq_length`` (logged; the model truncates
  them), and a text far longer than the model reads cut to a prefix that still fills it;
* vocabulary: the share of the tokens the tokenizer maps to its unknown token (an English vocabulary
  reads most Chinese characters as ``[UNK]``: such a model's scores say little, and the report says so).

Both are bounded: only a prefix of each text is tokenised, so a 10 MB line costs what a long one does.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

#: the vocabulary probe reads at most this many characters of each text it samples
PROBE_CHARS = 2000
#: the truncation probe reads at most max_seq_length x this many characters of each text
PROBE_CHARS_PER_TOKEN = 16


class TextProbes:
    """The truncation and vocabulary probes of one encoder (an mteb wrapper: its ``model``'s tokenizer and
    ``max_seq_length``); a model without a tokenizer (an API, a static model's own) is not probed."""

    def __init__(self, encoder: Any):
        self.encoder = encoder
        self.truncated = 0  # texts longer than max_seq_length, over the run
        self._tokens: dict[str, list[int]] = {}  # task -> [tokens probed, of them unknown to the vocabulary]

    def bound(self, task: str, texts: list[str]) -> list[str]:
        """Log how many texts exceed the model's max_seq_length (the model truncates them); return the texts
        to encode, a text far longer than the model reads cut to a prefix that still fills max_seq_length.

        Bounded: only the first ``max_seq_length x PROBE_CHARS_PER_TOKEN`` characters of a text are
        tokenised, here and (for a text cut) by the model: a 10 MB line costs what a long one does. A text
        whose prefix does not fill max_seq_length with room to spare is passed whole (the same vectors).
        """
        model = getattr(self.encoder, "model", None)
        tokenizer, limit = getattr(model, "tokenizer", None), getattr(model, "max_seq_length", None)
        if tokenizer is None or not limit or not callable(tokenizer):
            return texts
        budget = limit * PROBE_CHARS_PER_TOKEN
        try:
            ids = tokenizer([t[:budget] for t in texts], add_special_tokens=True, verbose=False)["input_ids"]
        except Exception:  # a tokenizer that cannot batch plain strings: nothing to report
            return texts
        lengths = [len(row) for row in ids]
        over = sum(n > limit for n in lengths)
        if over:
            logger.warning("%s: %d of %d texts are longer than max_seq_length=%d tokens (longest %d%s) and are "
                           "truncated", task, over, len(texts), limit, max(lengths),
                           "+" if any(len(t) > budget for t in texts) else "")
        self.truncated += over
        # the cut-off word at the prefix's end is far past the max_seq_length tokens the model keeps
        return [t[:budget] if len(t) > budget and n > limit + 16 else t for t, n in zip(texts, lengths, strict=True)]

    def vocabulary(self, task: str, texts: list[str], n: int = 256) -> None:
        """Count how many tokens of (the first ``n``) texts (their first ``PROBE_CHARS`` characters) the
        tokenizer maps to its unknown token (see :meth:`vocabulary_stats`)."""
        model = getattr(self.encoder, "model", None)
        tokenizer = getattr(model, "tokenizer", None)
        unk = getattr(tokenizer, "unk_token_id", None)
        if unk is None or not callable(tokenizer) or not texts:
            return
        try:
            ids = tokenizer([t[:PROBE_CHARS] for t in texts[:n]], add_special_tokens=False, verbose=False)["input_ids"]
        except Exception:  # a tokenizer that cannot batch plain strings: nothing to report
            return
        counts = self._tokens.setdefault(task, [0, 0])
        counts[0] += sum(len(row) for row in ids)
        counts[1] += sum(t == unk for row in ids for t in row)

    def vocabulary_stats(self, task: str) -> dict[str, Any] | None:
        """``{"unk_rate", "tokens_probed"}`` of the texts probed for ``task`` (None: not probed)."""
        tokens, unknown = self._tokens.get(task, (0, 0))
        return {"unk_rate": round(unknown / tokens, 4), "tokens_probed": tokens} if tokens else None
