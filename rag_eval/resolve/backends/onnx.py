"""``model.backend: onnx``: the exported model run by onnxruntime on the CPU.

Precisions: fp32 (the export as is) and int8 (onnxruntime's dynamic quantisation of the exported
model: int8 weights, activations quantised per call, written once beside the fp32 file). bf16 has no
onnxruntime CPU kernels for these graphs: OpenVINO runs it where the CPU has bf16.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from rag_eval.config.schema import ModelConfig

name = "onnx"


def check(cfg: ModelConfig, where: str) -> None:
    """Nothing of the machine beyond what the config checks (runtime installed, fp32 / int8)."""


def _int8_file(onnx_file: Path) -> Path:
    """onnxruntime's dynamic int8 quantisation of ``onnx_file``, made once (atomically) beside it."""
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = onnx_file.with_name(f"model.int8-ort{onnxruntime.__version__}.onnx")
    if not target.exists():
        tmp = target.with_name(f".tmp-{os.getpid()}-{target.name}")
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # its "consider pre-processing" advice is for vision models' static ranges
        try:
            quantize_dynamic(onnx_file, tmp, weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
        os.replace(tmp, target)
    return target


def runner(onnx_file: Path, cfg: ModelConfig):
    import onnxruntime
    import torch

    path = _int8_file(onnx_file) if cfg.precision == "int8" else onnx_file
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # as many threads as the torch path uses
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}

    def run(inputs: dict[str, np.ndarray]) -> np.ndarray:
        return session.run(None, {k: v for k, v in inputs.items() if k in wanted})[0]

    return run
