"""What every exported backend checks first: its runtime is installed."""

from __future__ import annotations

import importlib.util

from rag_eval.errors import ConfigError


def require(where: str, backend: str, runtime: str) -> None:
    """Refuse ``backend`` in one line when ``runtime`` (or onnx, which the export needs) is not installed."""
    missing = [m for m in (runtime, "onnx") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"{where}.backend is {backend}, which needs {' and '.join(missing)}: pip install "
                          f"'rag_eval[{backend}]'")
