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

- ``check(cfg, where)``: refuse what this machine cannot run (openvino: bf16 on a CPU without it), in one
  line; the runtime and the precisions each backend runs are the config's (``EXPORTED_BACKENDS``);
- ``runner(folder, cfg) -> Callable[[dict[str, np.ndarray]], np.ndarray]``: the compiled model.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from rag_eval.config.schema import EXPORTED_BACKENDS, ModelConfig
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
assert set(EXPORTED) == set(EXPORTED_BACKENDS)


def apply_backend(module: Any, cfg: ModelConfig, name: str, revision: str, where: str) -> None:
    """Run ``module`` (a SentenceTransformer or CrossEncoder) on ``cfg.backend``: a no-op for torch."""
    if cfg.backend == "torch":
        return
    from rag_eval.config.load import check_exported_backend
    from rag_eval.resolve.backends.export import swap_forward

    check_exported_backend(cfg, where)  # a model loaded directly, not through load_config, is checked too
    backend = EXPORTED[cfg.backend]
    backend.check(cfg, where)
    swap_forward(module, cfg, name, revision, where, backend)


def check_machine(models: list[ModelConfig]) -> None:
    """What this machine cannot run (openvino bf16 on a CPU without bf16), for every model of a run and its
    hybrid sub-models, in one line before any data or model is looked up."""
    places = [(m, f"model[{i}]") for i, m in enumerate(models)]
    for m, where in list(places):
        places += [(sub, f"{where}.hybrid.models[{j}]") for j, sub in enumerate((m.hybrid or {}).get("models") or [])]
    for m, where in places:
        if m.backend in EXPORTED:
            EXPORTED[m.backend].check(m, where)
