"""``model.backend: openvino``: the exported ONNX model compiled by OpenVINO for the CPU.

Precisions: fp32 (``INFERENCE_PRECISION_HINT=f32``: exact, OpenVINO would otherwise pick bf16 on a
CPU that has it) and bf16 (``INFERENCE_PRECISION_HINT=bf16``), which needs a CPU with bf16
(AVX512-BF16 or AMX: OpenVINO lists BF16 among the CPU's ``OPTIMIZATION_CAPABILITIES``). int8 needs
NNCF's weight compression, which is not a dependency: onnxruntime runs int8.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rag_eval.config.schema import ModelConfig
from rag_eval.errors import ConfigError

name = "openvino"


def cpu_has_bf16() -> bool:
    import openvino

    return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def check(cfg: ModelConfig, where: str) -> None:
    """This CPU runs the precision asked (the config has checked the runtime and that openvino runs it)."""
    if cfg.precision == "bf16" and not cpu_has_bf16():
        raise ConfigError(f"{where}.precision is bf16 with backend openvino, but this CPU has no bf16 (OpenVINO's CPU "
                          "capabilities lack BF16): use precision=fp32, or backend=onnx precision=int8")


def runner(onnx_file: Path, cfg: ModelConfig):
    import openvino
    import torch

    core = openvino.Core()
    compiled = core.compile_model(core.read_model(str(onnx_file)), "CPU", {
        "INFERENCE_PRECISION_HINT": "bf16" if cfg.precision == "bf16" else "f32",
        "INFERENCE_NUM_THREADS": torch.get_num_threads(),  # as many threads as the torch path uses
        "PERFORMANCE_HINT": "LATENCY",
    })
    request = compiled.create_infer_request()
    wanted = {i.get_any_name() for i in compiled.inputs}

    def run(inputs: dict[str, np.ndarray]) -> np.ndarray:
        result = request.infer({k: v for k, v in inputs.items() if k in wanted})
        return np.array(result[compiled.output(0)], copy=True)

    return run
