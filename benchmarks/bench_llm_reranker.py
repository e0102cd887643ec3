"""Stage 2 with an LLM reranker: rag_eval's qwen3 format vs mteb's ``Qwen3RerankerWrapper`` on the same pairs.

The pairs are what a two-stage run hands stage 2: for each of the first ``--queries`` CMRC2018 questions,
``--top-k`` passages of the corpus (real lengths, 40-1,500 characters). Both score them with the same
random-weight Qwen3ForCausalLM in a Qwen3-Reranker folder (``--hidden`` / ``--layers``; the real model is not
available offline, so the figure measures batching and padding, not the 0.6B's absolute speed):

- mteb: ``Qwen3RerankerWrapper.predict`` in input order, ``batch_size`` pairs per forward pass;
- rag_eval: ``LlmReranker.score_pairs`` (the qwen3 format: the same template, length-sorted batches).

It prints the largest score difference (must be < 1e-5 in float32) and the time ratio rag_eval / mteb
(target <= 0.7), median of ``--reps`` runs each, alternated.

    .venv/bin/python benchmarks/bench_llm_reranker.py                 # CPU, hidden 256, 4 layers
    .venv/bin/python benchmarks/bench_llm_reranker.py --device cuda --hidden 1024 --layers 28
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _pairs(data: Path, queries: int, top_k: int) -> list[tuple[str, str]]:
    with (data / "retrieval/cmrc2018-zh/queries.jsonl").open(encoding="utf-8") as fh:
        qs = [json.loads(line)["text"] for _, line in zip(range(queries), fh, strict=False)]
    with (data / "retrieval/cmrc2018-zh/corpus.jsonl").open(encoding="utf-8") as fh:
        docs = [json.loads(line)["text"] for line in fh]
    rng = np.random.default_rng(0)
    return [(q, docs[i]) for q in qs for i in rng.choice(len(docs), top_k, replace=False)]


def _folder(root: Path, hidden: int, layers: int, data: Path) -> Path:
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from tests.llm_standins import QWEN_TEMPLATE, _tokenizer

    tok = _tokenizer(data, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], eos_token="<|im_end|>",
                     pad_token="<|endoftext|>", chat_template=QWEN_TEMPLATE)
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(Qwen3Config(vocab_size=len(tok), hidden_size=hidden, intermediate_size=3 * hidden,
                                         num_hidden_layers=layers, num_attention_heads=max(2, hidden // 64),
                                         num_key_value_heads=max(1, hidden // 128), head_dim=64,
                                         max_position_embeddings=40960, tie_word_embeddings=False))
    folder = root / "Qwen3-Reranker-bench"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=1024)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    args = ap.parse_args()

    from mteb.models.model_implementations.qwen3_reranker import Qwen3RerankerWrapper

    from rag_eval.resolve.rerankers import FORMATS
    from rag_eval.resolve.rerankers.model import LlmReranker
    from rag_eval.resolve.rerankers.qwen3 import CARD_INSTRUCTION

    data = Path(args.data)
    pairs = _pairs(data, args.queries, args.top_k)
    with tempfile.TemporaryDirectory() as tmp:
        folder = _folder(Path(tmp), args.hidden, args.layers, data)
        ours = LlmReranker(FORMATS["qwen3"], folder, "causal_lm", args.max_length, None, device=args.device)
        ref = Qwen3RerankerWrapper(str(folder), device=args.device, max_length=args.max_length)

        def run_ref() -> np.ndarray:  # mteb's predict loop, input order, the card's instruction
            out = []
            for i in range(0, len(pairs), args.batch_size):
                texts = [ref.format_instruction(CARD_INSTRUCTION, q, d) for q, d in pairs[i:i + args.batch_size]]
                out += ref.compute_logits(ref.process_inputs(texts))
            return np.asarray(out, dtype=np.float32)

        def run_ours() -> np.ndarray:
            return ours.score_pairs(pairs, args.batch_size)

        def timed(fn):
            if args.device.startswith("cuda"):
                import torch

                torch.cuda.synchronize()
            start = time.perf_counter()
            out = fn()
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            return time.perf_counter() - start, out

        run_ours(), run_ref()  # warm-up
        t_ref, t_ours = [], []
        for _ in range(args.reps):
            t, a = timed(run_ref)
            t_ref.append(t)
            t, b = timed(run_ours)
            t_ours.append(t)
        diff = float(np.max(np.abs(a - b)))
    mr, mo = statistics.median(t_ref), statistics.median(t_ours)
    print(f"pairs {len(pairs)}, batch {args.batch_size}, max_length {args.max_length}, hidden {args.hidden}, "
          f"layers {args.layers}, device {args.device}")
    print(f"max |score difference| {diff:.2e}")
    print(f"mteb Qwen3RerankerWrapper {mr:.2f} s, rag_eval qwen3 {mo:.2f} s, ratio {mo / mr:.2f} (target <= 0.7)")


if __name__ == "__main__":
    main()
