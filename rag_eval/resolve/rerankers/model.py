"""An LLM reranker scored in its format: transformers' model, the format's hooks, length-sorted batches.

It offers ``score_pairs`` (the served rerankers' interface), so the stage's score cache, progress bar and
deduplication (:class:`rag_eval.stages.reranking.LengthSortedCrossEncoder`) apply unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rag_eval.resolve.rerankers.base import Format

logger = logging.getLogger(__name__)


class LlmReranker:
    """Pairs -> the format's token ids -> batches sorted by length, padded on the format's side -> scores."""

    def __init__(self, fmt: Format, folder: Path, kind: str, max_length: int | None, instruction: str | None,
                 device: str | None = None, model_kwargs: dict[str, Any] | None = None,
                 config_kwargs: dict[str, Any] | None = None, trust_remote_code: bool = False,
                 normalize: bool = False, prompts: dict[str, str] | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

        self.format, self.kind, self.normalize = fmt, kind, normalize
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True,
                                                       trust_remote_code=trust_remote_code)
        self.tokenizer.padding_side = fmt.padding_side
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        auto = AutoModelForCausalLM if kind == "causal_lm" else AutoModelForSequenceClassification
        self.model = auto.from_pretrained(str(folder), local_files_only=True, trust_remote_code=trust_remote_code,
                                          **(model_kwargs or {}), **(config_kwargs or {}))
        self.model.eval()
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device)
        self.max_length = max_length or fmt.default_max_length
        self.override = instruction  # the global ``instruction``: every task
        self.prompts = dict(prompts or {})  # mteb prompt keys (task name, task type, <Task>-query, query)
        self._states: dict[str | None, Any] = {}
        self.truncated = 0  # pairs cut to fit max_length, over the run
        self.mteb_model_meta: Any = None
        self.state(instruction)  # a max_length too small for the format's fixed parts is refused at load

    def instruction_for(self, task_metadata: Any) -> str | None:
        """The instruction a task's pairs are scored with: ``instruction``, else the prompt key mteb would
        pick (``<Task>-query``, task name, task type, ``query``), else (a format with task instructions, qwen3)
        the task's own instruction in mteb's metadata (C-MTEB's tasks carry one), else the format's default."""
        if self.override is not None:
            return self.override
        from rag_eval import _compat

        if task_metadata is not None and self.prompts:
            from mteb.types import PromptType

            key = _compat.prompt_name(self.prompts, task_metadata, PromptType.query)
            if key:
                return self.prompts[key]
        if self.format.task_instructions and task_metadata is not None:  # mteb's C-MTEB task instructions
            prompt = task_metadata.prompt
            prompt = prompt.get("query") if isinstance(prompt, dict) else prompt
            if prompt:
                return prompt
        return self.format.default_instruction

    def state(self, instruction: str | None) -> Any:
        key = self.format.default_instruction if instruction is None else instruction
        if key not in self._states:
            self._states[key] = self.format.prepare(self.tokenizer, self.max_length, key)
        return self._states[key]

    def score_pairs(self, pairs: list[tuple[str, str]], batch_size: int,
                    on_batch: Callable[[int], Any] | None = None, instruction: str | None = None) -> np.ndarray:
        """Scores of ``pairs`` in input order; batches are formed longest first."""
        import torch

        state = self.state(instruction)
        encoded = [self.format.encode(self.tokenizer, state, q, d) for q, d in pairs]
        cut = sum(e.truncated for e in encoded)
        if cut:
            self.truncated += cut
            logger.warning("%d of %d pairs were truncated to max_seq_length %d tokens (%s format)", cut, len(pairs),
                           self.max_length, self.format.name)
        order = np.argsort([-len(e.ids) for e in encoded], kind="stable")
        scores = np.empty(len(pairs), dtype=np.float32)
        pad = self.tokenizer.pad_token_id
        left = self.format.padding_side == "left"
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            seqs = [encoded[i].ids for i in rows]
            width = max(len(s) for s in seqs)
            ids = torch.full((len(seqs), width), pad, dtype=torch.long)
            mask = torch.zeros((len(seqs), width), dtype=torch.long)
            for r, s in enumerate(seqs):
                span = slice(width - len(s), width) if left else slice(0, len(s))
                ids[r, span] = torch.tensor(s)
                mask[r, span] = 1
            with torch.inference_mode():
                logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
                if logits.dim() == 3:  # a causal LM: the logits at each row's last real token
                    last = mask.sum(dim=1) - 1 if not left else torch.full((len(seqs),), width - 1)
                    logits = logits[torch.arange(len(seqs)), last.to(logits.device)]
                batch = self.format.score(logits, state, self.kind)
                if self.normalize:
                    batch = torch.sigmoid(batch)
            scores[rows] = batch.float().cpu().numpy()
            if on_batch is not None:
                on_batch(len(rows))
        return scores
