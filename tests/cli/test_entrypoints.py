"""The plugin entry (EvalScope's dict, YAML) and the Hydra CLI, end to end on real data."""

from __future__ import annotations

import time

import pytest

from tests.conftest import run_cli


def evalscope_one_stage(model_path, data_dir, out):
    """The seed's one-stage EvalScope dict, with a local model and local copies of the tasks."""
    return {
        "eval_backend": "RAGEval",
        "eval_config": {
            "tool": "MTEB",
            "model": [
                {
                    "model_name_or_path": model_path,
                    "pooling_mode": None,
                    "max_seq_length": 512,
                    "prompt": "",
                    "model_kwargs": {"torch_dtype": "auto"},
                    "encode_kwargs": {"batch_size": 128},
                }
            ],
            "eval": {
                "tasks": [
                    {"name": "T2Retrieval", "path": str(data_dir / "retrieval/cmrc2018-zh")},
                    {"name": "T2Reranking", "path": str(data_dir / "reranking/stsb-rerank-zh")},
                    {"name": "ATEC", "path": str(data_dir / "pair_classification/atec-zh")},
                    {"name": "Waimai", "path": str(data_dir / "classification/waimai-zh")},
                    {"name": "CLSClusteringS2S", "path": str(data_dir / "clustering/online-shopping-zh")},
                ],
                "verbosity": 2,
                "output_folder": str(out),
                "overwrite_results": True,
                "limits": 60,  # pairs: MiniLM reads Chinese poorly, 30 ATEC pairs can score below 0
                "corpus_size": 50,  # of cmrc2018's 848 long documents (encoded at 512 tokens)
                "hub": "modelscope",
                "top_k": 5,
            },
        },
    }


def test_evalscope_dict_runs_unchanged(tmp_path, data_dir, minilm_path):
    from rag_eval import run_task

    cfg = evalscope_one_stage(minilm_path, data_dir, tmp_path)
    scores = run_task(cfg)
    assert scores.ok, scores.failed
    expected_splits = {"T2Retrieval": "dev", "T2Reranking": "dev", "ATEC": "test", "Waimai": "test",
                       "CLSClusteringS2S": "test"}
    for task, split in expected_splits.items():
        main = scores[task][split]["main_score"]
        assert 0.0 < main <= 1.0, (task, main)
    assert scores["T2Retrieval"]["dev"]["main_score"] == scores["T2Retrieval"]["dev"]["ndcg_at_10"]
    assert scores["T2Reranking"]["dev"]["main_score"] == scores["T2Reranking"]["dev"]["map_at_1000"]
    # max_seq_length 512 reached the model; the folder name and a content revision name the results
    outcome = scores.outcomes[0]
    assert outcome.path.parent.parent.name == "model"
    assert outcome.path.parent.name.startswith("local-")
    assert sorted(p.stem for p in outcome.path.parent.glob("*.json")) == sorted([*expected_splits, "model_meta"])


def test_yaml_path_config(tmp_path, data_dir, minilm_path):
    from omegaconf import OmegaConf

    from rag_eval import run_task

    cfg = evalscope_one_stage(minilm_path, data_dir, tmp_path / "out")
    cfg["eval_config"]["eval"]["tasks"] = [{"name": "ATEC", "path": str(data_dir / "pair_classification/atec-zh")}]
    path = tmp_path / "task.yaml"
    OmegaConf.save(OmegaConf.create(cfg), path)
    from_yaml = run_task(str(path))
    from_dict = run_task(cfg)
    assert from_yaml["ATEC"]["test"]["main_score"] == pytest.approx(from_dict["ATEC"]["test"]["main_score"], abs=1e-9)


def test_cli_default_run_prints_scores(tmp_path, data_dir):
    proc = run_cli(f"eval.output_folder={tmp_path}", "eval.limits=40", "eval.corpus_size=60",
                   f"hydra.run.dir={tmp_path}/hydra")
    assert proc.returncode == 0, proc.stderr[-2000:]
    for task in ("CmrcRetrieval", "StsbRerankZh", "StsbSTS", "StsbPairs", "SnownlpSentiment",
                 "HskTopicsClustering"):  # the embedded demo (issue 13), one task per C-MTEB type
        assert task in proc.stdout
    assert "FAILED" not in proc.stdout
    assert len(list(tmp_path.glob("sentence-transformers__all-MiniLM-L6-v2/*/*.json"))) == 7


def test_cli_hub_model_offline_is_one_line(tmp_path):
    start = time.monotonic()
    # eval=demo: with eval=cmteb offline, the 31 tasks' data is looked up first (catalogue row hub-data-offline)
    proc = run_cli("model=m3e", "eval=demo", f"hydra.run.dir={tmp_path}/hydra", timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "AI-ModelScope/m3e-base" in lines[0] and "modelscope" in lines[0] and "local folder" in lines[0]
    assert "Traceback" not in proc.stderr
    assert time.monotonic() - start < 60


def test_run_task_takes_paths(tmp_path, data_dir, minilm_path):
    """os.PathLike everywhere a path is taken: model, output folder, task path, dataset_path, YAML file."""
    from pathlib import Path

    from omegaconf import OmegaConf

    from rag_eval import run_task

    folder = data_dir / "pair_classification/atec-zh"
    scores = run_task({"model": {"model_name_or_path": Path(minilm_path)},
                       "eval": {"tasks": [{"name": "AtecPairs", "type": "PairClassification", "path": folder},
                                          "CustomSTS"],
                                "dataset_path": data_dir / "sts/stsb-zh", "output_folder": tmp_path / "out",
                                "limits": 30, "verbosity": 0}})
    assert scores.ok, scores.failed
    assert 0.0 < scores["AtecPairs"]["test"]["main_score"] <= 1.0
    assert -1.0 <= scores["CustomSTS"]["test"]["main_score"] <= 1.0
    assert all(o.path.is_relative_to(tmp_path / "out") for o in scores.outcomes)
    cfg = tmp_path / "run.yaml"
    OmegaConf.save(OmegaConf.create({"model": {"model_name_or_path": minilm_path},
                                     "eval": {"tasks": [{"name": "AtecPairs", "type": "PairClassification",
                                                         "path": str(folder)}],
                                              "output_folder": str(tmp_path / "yaml-out"), "limits": 30,
                                              "verbosity": 0}}), cfg)
    again = run_task(cfg)  # a Path, not a str
    assert again["AtecPairs"]["test"]["main_score"] == pytest.approx(scores["AtecPairs"]["test"]["main_score"],
                                                                     abs=1e-9)
