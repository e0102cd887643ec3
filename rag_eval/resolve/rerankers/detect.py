"""``reranker_format: auto``, decided from the model folder alone (no weights read, no model run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rag_eval.errors import ConfigError
from rag_eval.resolve.rerankers import FORMATS, REFUSED, SUPPORTED, RerankerFormat

#: known model ids (lowercase substrings of the id or folder name) -> format
KNOWN_IDS = (("qwen3-reranker", "qwen3"), ("bge-reranker-v2-gemma", "flag_llm"),
             ("bge-reranker-v2.5-gemma", "flag_llm"), ("minicpm-layerwise", "flag_layerwise"))


def _json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


def chat_template(folder: Path) -> str:
    """The tokenizer's chat template (tokenizer_config.json or chat_template.jinja), "" if none."""
    tpl = _json(folder / "tokenizer_config.json").get("chat_template") or ""
    if not tpl and (folder / "chat_template.jinja").is_file():
        tpl = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    if isinstance(tpl, list):  # named templates
        tpl = " ".join(t.get("template", "") for t in tpl if isinstance(t, dict))
    return tpl


def _has_pair_roles(tpl: str) -> bool:
    """A template rendering the 'query' and 'document' roles sentence-transformers maps a pair to."""
    return all(f'"{r}"' in tpl or f"'{r}'" in tpl for r in ("query", "document"))


def _known(model_id: str, folder: Path) -> str | None:
    names = f"{model_id} {folder.name}".lower()
    return next((fmt for key, fmt in KNOWN_IDS if key in names), None)


def architecture(folder: Path) -> tuple[str, str]:
    """(architecture, kind): kind is causal_lm, sequence_classification or other."""
    arch = (_json(folder / "config.json").get("architectures") or [""])[0]
    if "LayerWise" in arch:  # bge-reranker-v2-minicpm-layerwise, whatever its folder is called
        return arch, "layerwise"
    kind = ("causal_lm" if arch.endswith("ForCausalLM") else
            "sequence_classification" if arch.endswith("ForSequenceClassification") else "other")
    return arch, kind


def _decoder(folder: Path) -> bool:
    config = _json(folder / "config.json")
    return not config.get("is_encoder_decoder") and config.get("model_type") in {
        "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "llama", "mistral", "minicpm", "phi3", "qwen2_moe",
        "qwen3_moe"} or bool(chat_template(folder))


def detect_format(cfg: Any, folder: Path, where: str = "model[1]") -> str:
    """The format ``cfg.reranker_format`` means for ``folder``; one-line ConfigError when rag_eval
    cannot score the folder as its authors do."""
    chosen = cfg.reranker_format
    arch, kind = architecture(folder)
    known = "flag_layerwise" if kind == "layerwise" else _known(cfg.model_name_or_path, folder)
    fmt = chosen
    if chosen == RerankerFormat.auto.value:
        if kind in ("causal_lm", "layerwise"):
            fmt = known or ""
            if not fmt:
                raise ConfigError(
                    f"{where} {cfg.model_name_or_path!r} is a causal LM ({arch}) whose scoring format rag_eval cannot "
                    f"tell: set reranker_format to one of {SUPPORTED} (qwen3: Qwen3-Reranker, flag_llm: "
                    "bge-reranker-v2-gemma)")
        elif kind == "sequence_classification" and _decoder(folder):
            tpl = chat_template(folder)
            if tpl and _has_pair_roles(tpl):
                fmt = RerankerFormat.cross_encoder.value
            elif known in FORMATS and kind in FORMATS[known].kinds:
                fmt = known
            else:
                raise ConfigError(
                    f"{where} {cfg.model_name_or_path!r} is a decoder sequence-classification conversion ({arch}) "
                    "without a chat template carrying the query/document roles: set reranker_format to the "
                    f"format it was converted from (one of {SUPPORTED}, e.g. qwen3)")
        else:
            fmt = RerankerFormat.cross_encoder.value
    if fmt in REFUSED:
        raise ConfigError(f"{where}.reranker_format {fmt}: {REFUSED[fmt]}; supported: auto, {SUPPORTED}")
    if fmt in FORMATS and kind not in FORMATS[fmt].kinds:
        raise ConfigError(f"{where}.reranker_format {fmt} reads a {' or '.join(FORMATS[fmt].kinds)} head, but "
                          f"{cfg.model_name_or_path!r} is {arch or 'no transformers model'}: use one of {SUPPORTED}")
    return fmt
