"""rag_eval as a product outside this repository: the wheel carries its configs and the demo,
and the installed command runs the embedded demo from any folder, with no ../shared anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import CONF, ROOT, cli_env

pytestmark = [pytest.mark.subprocess]

PACKAGE = ROOT / "rag_eval"
DEMO_TASKS = {"CmrcRetrieval": "Retrieval", "StsbRerankZh": "Reranking", "StsbSTS": "STS",
              "StsbPairs": "PairClassification", "SnownlpSentiment": "Classification",
              "HskTopicsClustering": "Clustering"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    [whl] = out.glob("rag_eval-*.whl")
    return whl


def test_wheel_carries_code_configs_and_demo(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py")}
    assert modules <= names, sorted(modules - names)
    configs = {"rag_eval/conf/" + p.relative_to(CONF).as_posix() for p in CONF.rglob("*.yaml")}
    assert configs <= names and "rag_eval/conf/eval/demo.yaml" in names, sorted(configs - names)
    demo = {p.relative_to(ROOT).as_posix() for p in (PACKAGE / "demo_data").rglob("*") if p.is_file()
            and "__pycache__" not in p.parts}
    assert demo <= names, sorted(demo - names)
    assert {"rag_eval/demo_data/LICENSES.md", "rag_eval/demo_data/licenses/CC-BY-SA-4.0.txt"} <= names
    assert "rag_eval/py.typed" in names  # PEP 561: the annotations reach type checkers
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "rag-eval = rag_eval.__main__:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    assert sum(zipfile.ZipFile(wheel).getinfo(n).file_size for n in names) < 5_000_000  # a few MB at most


@pytest.mark.slow
def test_installed_wheel_runs_the_demo_from_anywhere(wheel, tmp_path):
    """The wheel unpacked into its own folder (this venv provides the libraries), run from /tmp-like
    folder with no repository, no conf/ and no ../shared: six real scores."""
    target, work, out = tmp_path / "site", tmp_path / "elsewhere", tmp_path / "out"
    work.mkdir()
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                           str(wheel)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    env = cli_env(PYTHONPATH=str(target), RAG_EVAL_DATA=str(tmp_path / "no-such-data"))
    proc = subprocess.run([sys.executable, "-m", "rag_eval", f"eval.output_folder={out}", "eval.limits=30",
                           "eval.corpus_size=50"],  # 50 of the retrieval task's 300 long documents
                          cwd=work, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in out.glob("*/*/*.json")
               if p.name != "model_meta.json"}
    assert set(results) == set(DEMO_TASKS)
    for name, obj in results.items():
        assert obj["rag_eval"]["task_type"] == DEMO_TASKS[name]
        assert obj["rag_eval"]["dataset_path"].startswith(str(target)), obj["rag_eval"]["dataset_path"]
        main = [e["main_score"] for entries in obj["scores"].values() for e in entries]
        assert main and all(0.0 < m <= 1.0 for m in main), (name, main)
    every_file = "".join(p.read_text(encoding="utf-8", errors="replace") for p in out.rglob("*")
                         if p.is_file() and p.suffix in (".json", ".md", ".csv"))
    assert "shared/data" not in every_file and str(ROOT / "rag_eval") not in every_file
    assert f"summary {out / 'summary.md'}" in proc.stdout  # the one line saying where things are
    assert "reads many tokens as unknown" in (out / "summary.md").read_text(encoding="utf-8")


def test_help_is_rag_evals_own(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "rag_eval", "--help"], cwd=tmp_path, env=cli_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "powered by Hydra" not in proc.stdout
    assert proc.stdout.startswith("rag_eval: evaluate text-embedding models")
    for group in ("model: ", "reranker: ", "eval: ", "launcher: "):
        assert group in proc.stdout
    assert proc.stdout.count("\n  rag-eval ") >= 3  # three example commands
    assert "demo" in proc.stdout and os.fspath(ROOT) not in proc.stdout
