"""Inference backends of a local encoder (``model.backend``): torch, onnx, openvino.

The torch backend is sentence-transformers as loaded. The other two keep sentence-transformers'
model object whole (tokenizer, prompts, length-sorted batches, pooling, normalisation, the
cross-encoder's activation) and replace only the transformer's forward pass: the Hugging Face model
inside the ``Transformer`` module is exported once to ONNX (:mod:`.export`, cached on disk) and run by
onnxruntime (:mod:`.onnx`) or OpenVINO (:mod:`.openvino`).

sentence-transformers' own ``backend="onnx"`` / ``"openvino"`` would be the natural path, but it goes
through optimum, and optimum does not install beside transformers 5 (optimum-onnx 0.1.0 pins
transformers < 4.58): this module uses the runtimes directly.

Each backend is one module with the same hooks, registered in :data:`BACKENDS`:

- ``check(cfg, where)``: refuse a precision the runtime cannot run on this machine, in one line;
- ``runner(folder, cfg) -> Callable[[dict[str, np.ndarray]], np.ndarray]``: the compiled model.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from rag_eval.config.schema import BACKENDS, ModelConfig
from rag_eval.resolve.backends import onnx as _onnx
from rag_eval.resolve.backends import openvino as _openvino


class Runner(Protocol):
    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray: ...


class Backend(Protocol):
    name: str

    def check(self, cfg: ModelConfig, where: str) -> None: ...

    def runner(self, onnx_file: Any, cfg: ModelConfig) -> Runner: ...


#: the exported backends by name (torch is sentence-transformers itself: no entry)
EXPORTED: dict[str, Backend] = {b.name: b for b in (_onnx, _openvino)}
assert set(EXPORTED) | {"torch"} == set(BACKENDS)


def apply_backend(module: Any, cfg: ModelConfig, name: str, revision: str, where: str) -> None:
    """Run ``module`` (a SentenceTransformer or CrossEncoder) on ``cfg.backend``: a no-op for torch."""
    if cfg.backend == "torch":
        return
    from rag_eval.resolve.backends.export import swap_forward

    backend = EXPORTED[cfg.backend]
    backend.check(cfg, where)
    swap_forward(module, cfg, name, revision, where, backend)
