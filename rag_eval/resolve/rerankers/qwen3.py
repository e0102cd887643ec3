"""``qwen3``: the Qwen3-Reranker recipe (Qwen's reference script, mteb's ``Qwen3RerankerWrapper``).

The pair is written ``<Instruct>: {instruction}\\n<Query>: {query}\\n<Document>: {document}``, tokenised
and truncated as one text to ``max_length`` minus the fixed prefix and suffix, then wrapped in the chat
prefix (a system turn asking for "yes" or "no") and the assistant suffix with an empty think block.
Batches are padded on the left; the score is P("yes") = softmax over the ("no", "yes") logits at the
last position. A sequence-classification conversion (one logit, yes minus no) gives sigmoid(logit),
the same number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rag_eval.resolve.rerankers.base import Encoded

PREFIX = ('<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the '
          'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n')
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
#: the model card's instruction (mteb's wrapper defaults to "Given the user query, retrieval the relevant passages")
CARD_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"


@dataclass
class _State:
    prefix: list[int]
    suffix: list[int]
    room: int  # tokens left for the instruction, query and document
    instruction: str
    yes: int
    no: int


class Qwen3Format:
    name = "qwen3"
    padding_side = "left"
    default_max_length = 8192
    default_instruction = CARD_INSTRUCTION
    task_instructions = True  # mteb's task instruction (metadata.prompt) before the default
    kinds = ("causal_lm", "sequence_classification")

    def prepare(self, tokenizer: Any, max_length: int, instruction: str | None) -> _State:
        prefix = tokenizer.encode(PREFIX, add_special_tokens=False)
        suffix = tokenizer.encode(SUFFIX, add_special_tokens=False)
        if max_length <= len(prefix) + len(suffix):
            from rag_eval.errors import ConfigError

            raise ConfigError(f"max_seq_length {max_length} leaves no room for the pair: the qwen3 format's prefix "
                              f"and suffix take {len(prefix) + len(suffix)} tokens; use more")
        return _State(prefix, suffix, max_length - len(prefix) - len(suffix),
                      CARD_INSTRUCTION if instruction is None else instruction,
                      tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no"))

    def encode(self, tokenizer: Any, state: _State, query: str, document: str) -> Encoded:
        text = f"<Instruct>: {state.instruction}\n<Query>: {query}\n<Document>: {document}"
        ids = tokenizer(text)["input_ids"]  # as the recipe: the tokenizer's own special tokens (Qwen3 adds none)
        cut = len(ids) > state.room
        return Encoded(state.prefix + ids[: state.room] + state.suffix, cut)

    def score(self, last_logits: Any, state: _State, kind: str) -> Any:
        import torch

        if kind == "sequence_classification":
            return torch.sigmoid(last_logits[:, 0].float())
        pair = torch.stack([last_logits[:, state.no], last_logits[:, state.yes]], dim=1).float()
        return torch.softmax(pair, dim=1)[:, 1]


FORMAT = Qwen3Format()
