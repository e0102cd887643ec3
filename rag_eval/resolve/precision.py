"""A local model's compute precision (``model.precision``): one switch for bi-encoders and cross-encoders.

- fp32 (or null): the model as loaded (``model_kwargs.torch_dtype`` still works, EvalScope's way).
- fp16: CUDA only (fp16 matmuls on a CPU are slower than fp32): the weights are cast, as
  sentence-transformers users do with ``model.half()``.
- bf16 on CUDA: the weights are cast to bfloat16.
- int8: CPU only: torch's dynamic quantisation of every linear layer (int8 weights, activations
  quantised per call). About 3x faster than fp32 on an AVX2 CPU, but scores move by ~1e-2
  (docs/BENCHMARKS.md (g)): a speed/quality trade to measure, not a free switch.
- bf16 on a CPU: an autocast region around every encode / predict call. Autocast keeps layer norms,
  softmax and the pooling sums in fp32, so scores move less than with bf16 weights at the same speed
  (docs/BENCHMARKS.md). A CPU device list (sentence-transformers' multi-process pool) cannot carry an
  autocast region into its workers, so there the weights are cast instead.

The precision is part of the embedding and score cache keys and of the experiment folder name
(``LoadedModel.variant``), so an fp32 and a bf16 run never share vectors or result files.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from rag_eval.config import ModelConfig
from rag_eval.errors import ConfigError

logger = logging.getLogger(__name__)

Region = Callable[[], AbstractContextManager]


def no_region() -> AbstractContextManager:
    return contextlib.nullcontext()


def apply_precision(module: Any, cfg: ModelConfig) -> Region:
    """Set ``module`` (a SentenceTransformer or CrossEncoder) to ``cfg.precision``.

    Returns the region each encode / predict call runs in (a no-op unless it is CPU autocast).
    """
    if cfg.precision in (None, "fp32"):
        from rag_eval.config.load import is_fp16

        if is_fp16(cfg.model_kwargs) and str(module.device).startswith("cpu") and not isinstance(cfg.device, list):
            # the rule of precision fp16, for EvalScope's spelling: no device was named and there is no GPU
            raise ConfigError(f"{cfg.name or cfg.model_name_or_path}: model_kwargs.torch_dtype float16 needs a CUDA "
                              "device and this model runs on the CPU: use precision=bf16 (or name a cuda device)")
        return no_region
    import torch

    if cfg.precision == "int8":  # every nn.Linear -> dynamically quantised int8 (activations quantised per call)
        if str(module.device) != "cpu":
            raise ConfigError(f"{cfg.name or cfg.model_name_or_path}: precision int8 runs on the CPU, and this "
                              f"model is on {module.device}: use device=cpu, or precision=fp16/bf16")
        torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
        logger.info("%s: int8 dynamic quantisation of its linear layers (CPU)", cfg.name or cfg.model_name_or_path)
        return no_region

    dtype = torch.float16 if cfg.precision == "fp16" else torch.bfloat16
    devices = cfg.device if isinstance(cfg.device, list) else [cfg.device or str(module.device)]
    on_cpu = all(str(d).startswith("cpu") for d in devices)
    if on_cpu and cfg.precision == "fp16":  # no device was named and there is no GPU
        raise ConfigError(f"{cfg.name or cfg.model_name_or_path}: precision fp16 needs a CUDA device and this"
                          " model runs on the CPU: use precision=bf16 (or name a cuda device)")
    if on_cpu and not isinstance(cfg.device, list):
        logger.info("%s: bf16 autocast on the CPU", cfg.name or cfg.model_name_or_path)
        return lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    module.to(dtype)
    logger.info("%s: weights in %s on %s", cfg.name or cfg.model_name_or_path, cfg.precision,
                ", ".join(map(str, devices)))
    return no_region
