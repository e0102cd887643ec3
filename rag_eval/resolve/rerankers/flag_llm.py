"""``flag_llm``: FlagEmbedding's decoder-only reranker format (bge-reranker-v2-gemma).

Re-implemented from FlagEmbedding's ``BaseLLMReranker`` (``inference/reranker/decoder_only/base.py``):
the query is ``"A: " + query``, cut to ``max_length * 3 // 4`` tokens; the document is ``"B: " + document``,
cut to ``max_length`` tokens; the input is ``[bos] + query`` then ``"\\n" + document`` (the document's
end cut so that the two fit ``max_length`` plus the separator and prompt), then ``"\\n" + prompt``.
The score is the raw logit of the ``Yes`` token at the last real position (``normalize: true`` in
``encode_kwargs`` applies a sigmoid, as FlagEmbedding's ``normalize``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rag_eval.resolve.rerankers.base import Encoded

PROMPT = ("Given a query A and a passage B, determine whether the passage contains an answer to the query by "
          "providing a prediction of either 'Yes' or 'No'.")


@dataclass
class _State:
    max_length: int
    sep: list[int]
    prompt: list[int]
    bos: list[int]
    yes: int


class FlagLlmFormat:
    name = "flag_llm"
    padding_side = "left"  # the last position is the last real token either way; left needs no gather
    default_max_length = 512
    default_instruction = PROMPT  # the prompt after the pair: the instruction slot of this format
    task_instructions = False  # mteb's task instruction (metadata.prompt) before the default
    kinds = ("causal_lm",)

    def prepare(self, tokenizer: Any, max_length: int, instruction: str | None) -> _State:
        bos = tokenizer.bos_token_id
        keep_bos = bos is not None and bos != tokenizer.pad_token_id
        return _State(max_length, tokenizer("\n", add_special_tokens=False)["input_ids"],
                      tokenizer(PROMPT if instruction is None else instruction, add_special_tokens=False)["input_ids"],
                      [bos] if keep_bos else [], tokenizer("Yes", add_special_tokens=False)["input_ids"][0])

    def encode(self, tokenizer: Any, state: _State, query: str, document: str) -> Encoded:
        q_all = tokenizer("A: " + query, add_special_tokens=False)["input_ids"]
        d_all = tokenizer("B: " + document, add_special_tokens=False)["input_ids"]
        first = state.bos + q_all[: state.max_length * 3 // 4]
        second = state.sep + d_all[: state.max_length]
        limit = state.max_length + len(state.sep) + len(state.prompt)
        over = max(0, len(first) + len(second) - limit)
        second = second[: len(second) - over]
        cut = len(q_all) > state.max_length * 3 // 4 or len(d_all) > state.max_length or over > 0
        return Encoded(first + second + state.sep + state.prompt, cut)

    def score(self, last_logits: Any, state: _State, kind: str) -> Any:
        return last_logits[:, state.yes].float()


FORMAT = FlagLlmFormat()
