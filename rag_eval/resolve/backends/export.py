"""The ONNX export of a sentence-transformers ``Transformer`` module, cached on disk, and the swap of its
forward pass for a runtime's.

The export is a pure function of the model and the library versions, so it is cached once per model
in ``$RAG_EVAL_EXPORT_CACHE`` (default ``$XDG_CACHE_HOME/rag_eval/exports``, i.e. ~/.cache/...), never in
the repository or the results: ``<model>/<revision>/<settings digest>/model.onnx`` plus ``meta.json``.
The digest covers what changes the exported graph (model identity, config_kwargs / model_kwargs, the
output exported, torch / transformers / onnx versions, the opset), as the embedding cache's key covers
what changes a vector. The folder is written under a temporary name and renamed into place, so a process
that reads it never sees half an export; two processes exporting at once each write their own and the
first rename wins.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from rag_eval.config.schema import ModelConfig
from rag_eval.errors import ConfigError
from rag_eval.results.layout import safe_path_part

logger = logging.getLogger(__name__)

OPSET = 17
FORMAT = 1  # bump when the export itself changes
ONNX_FILE = "model.onnx"
META_FILE = "meta.json"
#: what a Transformer module's forward returns, by the output the module reads from the model
OUTPUTS = ("last_hidden_state", "logits")


def export_root() -> Path:
    env = os.environ.get("RAG_EVAL_EXPORT_CACHE")
    if env:
        return Path(os.path.expandvars(env)).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rag_eval" / "exports"


def export_folder(cfg: ModelConfig, name: str, revision: str, output: str, input_names: list[str]) -> Path:
    """Where the model's export lives: one folder per model, revision and export settings."""
    import onnx
    import transformers

    settings = {
        "model": name, "revision": revision, "model_name_or_path": cfg.model_name_or_path, "output": output,
        "inputs": input_names, "opset": OPSET, "format": FORMAT,
        "model_kwargs": {k: str(v) for k, v in sorted(cfg.model_kwargs.items())},
        "config_kwargs": {k: str(v) for k, v in sorted(cfg.config_kwargs.items())},
        "torch": torch.__version__, "transformers": transformers.__version__, "onnx": onnx.__version__,
    }
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return export_root() / safe_path_part(name) / safe_path_part(revision) / digest


def _transformer(module: Any, where: str) -> Any:
    """The sentence-transformers ``Transformer`` module the backend replaces, checked exportable."""
    from sentence_transformers.base.modules import Transformer
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    found = [m for m in module.modules() if isinstance(m, Transformer)]
    what = f"{where} ({module.__class__.__name__})"
    if len(found) != 1:
        raise ConfigError(f"{what}: backend {'onnx/openvino'} exports one transformer and this model has "
                          f"{len(found)}: use backend=torch")
    transformer = found[0]
    config = transformer.model.config
    family = getattr(config, "model_type", "?")
    text = transformer.modality_config.get("text") or {}
    output = text.get("method_output_name")
    output = output[0] if isinstance(output, (list, tuple)) and len(output) == 1 else output
    if family not in MODEL_FOR_MASKED_LM_MAPPING_NAMES or text.get("method") != "forward" or output not in OUTPUTS:
        raise ConfigError(f"{what}: a {family} model ({transformer.model.__class__.__name__}) is not an encoder "
                          "family the ONNX export handles (BERT, XLM-R, ...): use backend=torch")
    return transformer, output


def _export(transformer: Any, output: str, input_names: list[str], folder: Path) -> None:
    """torch.onnx.export of the Hugging Face model into ``folder`` (atomically: temp folder, then rename)."""
    hf = transformer.model
    sample = transformer.tokenizer(["an example sentence to export", "another"], padding=True, return_tensors="pt")

    class Graph(torch.nn.Module):  # positional tensors in, the one output the Transformer module reads out
        def __init__(self) -> None:
            super().__init__()
            self.hf = hf

        def forward(self, *tensors):
            return getattr(self.hf(**dict(zip(input_names, tensors, strict=True)), return_dict=True), output)

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-", dir=folder.parent))
    try:
        axes = {n: {0: "batch", 1: "sequence"} for n in input_names}
        axes[output] = {0: "batch", 1: "sequence"} if output == "last_hidden_state" else {0: "batch"}
        with torch.no_grad():
            torch.onnx.export(Graph().eval(), tuple(sample[n] for n in input_names), str(tmp / ONNX_FILE),
                              input_names=input_names, output_names=[output], dynamic_axes=axes,
                              opset_version=OPSET, dynamo=False)
        (tmp / META_FILE).write_text(json.dumps({"inputs": input_names, "output": output}) + "\n")
        try:
            os.rename(tmp, folder)  # atomic; fails if another process renamed its export first
        except OSError:
            if not (folder / ONNX_FILE).exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def swap_forward(module: Any, cfg: ModelConfig, name: str, revision: str, where: str, backend: Any) -> None:
    """Export (or reuse the cached export of) ``module``'s transformer and run its forward on ``backend``."""
    import warnings

    transformer, output = _transformer(module, where)
    input_names = [n for n in transformer.tokenizer.model_input_names
                   if n in ("input_ids", "attention_mask", "token_type_ids")]
    folder = export_folder(cfg, name, revision, output, input_names)
    if (folder / ONNX_FILE).exists():
        logger.info("%s: reusing the ONNX export in %s", name, folder)
    else:
        logger.info("%s: exporting to ONNX in %s", name, folder)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _export(transformer, output, input_names, folder)
    run = backend.runner(folder / ONNX_FILE, cfg)
    transformer.model = RuntimeModel(transformer.model.config, run, input_names, output, backend.name)


class RuntimeModel(torch.nn.Module):
    """Stands in for the Hugging Face model inside sentence-transformers' ``Transformer`` module: the same
    inputs and the one output the module reads, computed by an ONNX runtime (no torch weights kept)."""

    def __init__(self, config: Any, run: Any, input_names: list[str], output: str, backend: str) -> None:
        super().__init__()
        self.config = config
        self.run = run
        self.input_names = input_names
        self.output = output
        self.backend = backend
        self.device = torch.device("cpu")
        self.dtype = torch.float32

    def forward(self, **features: Any) -> dict[str, Any]:
        feed = {n: features[n].numpy().astype("int64", copy=False) for n in self.input_names if n in features}
        if "token_type_ids" in self.input_names and "token_type_ids" not in feed:
            feed["token_type_ids"] = torch.zeros_like(features["input_ids"]).numpy()
        return {self.output: torch.from_numpy(self.run(feed))}
