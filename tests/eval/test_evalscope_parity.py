"""EvalScope's own config shapes through ``run_task``: several models, work_dir, limits as EvalScope
samples, TaskConfig objects, the rerank URL rule (the API cases are in tests/scale/test_api.py)."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from pathlib import Path

import pytest

from rag_eval.errors import ConfigError
from tests.conftest import local_task

CRANFIELD = "retrieval/cranfield-en"


@dataclasses.dataclass
class TaskConfigLike:
    """Shaped like EvalScope's ``TaskConfig`` (the attributes its RAGEval runs use, and some of its native
    evaluation's at their defaults): rag_eval reads its ``to_dict()`` without importing EvalScope."""

    eval_backend: str = "RAGEval"
    eval_config: dict | None = None
    work_dir: str = "./outputs"
    no_timestamp: bool = False
    use_cache: str | None = None
    datasets: list = dataclasses.field(default_factory=list)
    limit: int | None = None
    seed: int = 42
    eval_batch_size: int = 1

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _first_queries_judged_docs(folder: Path, n: int) -> tuple[list[str], set[str]]:
    ids = [json.loads(line)["_id"] for line in (folder / "queries.jsonl").open(encoding="utf-8")][:n]
    with (folder / "qrels" / "test.tsv").open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["query-id"] in set(ids) and int(r["score"]) > 0]
    return ids, {r["corpus-id"] for r in rows}


def test_rerank_url_follows_evalscope_rule():
    from rag_eval.resolve.api_models import rerank_url

    assert rerank_url("http://h:1/v1") == "http://h:1/v1/rerank"
    assert rerank_url("http://h:1/v1/") == "http://h:1/v1/rerank"
    assert rerank_url("http://h:1/v1/rerank") == "http://h:1/v1/rerank"
    assert rerank_url("http://h:1/v1/reranks/") == "http://h:1/v1/reranks"
    assert rerank_url("https://dashscope.aliyuncs.com/compatible-api/v1") == (
        "https://dashscope.aliyuncs.com/compatible-api/v1/reranks")


def test_several_bi_encoders_run_in_turn_from_a_task_config(tmp_path, data_dir, minilm_path):
    """EvalScope's dispatch: no cross-encoder -> each model one-stage in turn; a TaskConfig-like object is read
    through its dict form; work_dir gets a <YYYYmmdd_HHMMSS> folder, as EvalScope's run does."""
    from rag_eval import run_task

    models = [{"model_name_or_path": minilm_path, "name": "mini-a"},
              {"model_name_or_path": minilm_path, "name": "mini-b", "pooling_mode": "cls"},
              {"model_name_or_path": minilm_path, "name": "mini-c", "pooling_mode": "max"}]
    cfg = TaskConfigLike(work_dir=str(tmp_path / "wd"), eval_config={"tool": "MTEB", "models": models, "eval": {
        "custom_tasks": [{"name": "Cranfield", "data_path": str(data_dir / CRANFIELD), "eval_splits": ["test"]}],
        "limits": 10, "corpus_size": 50, "verbosity": 0}})
    scores = run_task(cfg)
    assert scores.ok and list(scores) == ["mini-a", "mini-b", "mini-c"]
    [stamp] = (tmp_path / "wd").iterdir()
    assert re.fullmatch(r"\d{8}_\d{6}", stamp.name)
    for name in ("mini-a", "mini-b", "mini-c"):
        assert list(stamp.glob(f"{name}/*/Cranfield.json"))
        assert 0 < scores[name]["Cranfield"]["test"]["ndcg_at_10"] <= 1
    # three poolings of one model: three different scores (each model really ran)
    assert len({scores[n]["Cranfield"]["test"]["ndcg_at_10"] for n in scores}) == 3


def test_work_dir_no_timestamp_and_output_folder(tmp_path, data_dir, minilm_path, caplog):
    from rag_eval.config import load_config

    ev = {"task_names": ["ATEC"], "output_folder": str(tmp_path / "ignored")}
    raw = {"eval_backend": "RAGEval", "work_dir": str(tmp_path / "wd"), "no_timestamp": True,
           "eval_config": {"tool": "MTEB", "models": [{"model_name_or_path": minilm_path}], "eval": ev}}
    with caplog.at_level("INFO", logger="rag_eval"):
        run = load_config(raw)
    assert run.eval.output_folder == str(tmp_path / "wd")
    assert f"eval.output_folder {tmp_path / 'ignored'} is replaced by work_dir: results go to {tmp_path / 'wd'}" \
        in caplog.text
    resumed = load_config({**raw, "use_cache": str(tmp_path / "old")})  # EvalScope: use_cache is the run to resume
    assert resumed.eval.output_folder == str(tmp_path / "old")
    plain = load_config({k: v for k, v in raw.items() if k not in ("work_dir", "no_timestamp")})
    assert plain.eval.output_folder == str(tmp_path / "ignored")  # no work_dir: eval.output_folder as given


def test_task_config_native_keys_are_logged_not_dropped(caplog, minilm_path):
    from rag_eval.config import load_config

    cfg = TaskConfigLike(datasets=["gsm8k"], limit=5, no_timestamp=True, work_dir="wd", eval_config={
        "tool": "MTEB", "models": [{"model_name_or_path": minilm_path}], "eval": {"task_names": ["ATEC"]}})
    with caplog.at_level("WARNING", logger="rag_eval"):
        load_config(cfg)
    assert ("datasets, limit: EvalScope TaskConfig key(s) of its native evaluation, which the RAGEval backend "
            "does not read (in EvalScope either): ignored") in caplog.text
    with pytest.raises(ConfigError, match="unknown config key 'wrok_dir': did you mean 'work_dir'"):
        load_config({"eval_backend": "RAGEval", "wrok_dir": "x", "eval_config": {}})


def test_limits_mode_evalscope_keeps_first_queries_and_judged_documents(tmp_path, data_dir, minilm_path):
    """limits_mode evalscope: the first `limits` queries of the file and only their judged documents (EvalScope's
    sample); the default seeded sample keeps the whole corpus, so its score is lower."""
    from rag_eval import run_task

    folder = data_dir / CRANFIELD
    task = local_task("Cranfield", "Retrieval", folder)
    runs = {}
    for mode in ("seeded", "evalscope"):
        runs[mode] = run_task({"model": {"model_name_or_path": minilm_path}, "eval": {
            "tasks": [task], "limits": 20, "limits_mode": mode, "output_folder": str(tmp_path / mode),
            "verbosity": 0, **({"corpus_size": 150} if mode == "seeded" else {})}})
    ids, judged = _first_queries_judged_docs(folder, 20)
    [evalscope] = runs["evalscope"].outcomes
    assert evalscope.sample["queries"] == 20 and evalscope.sample["corpus"] == len(judged)
    assert evalscope.sample["limits_mode"] == "evalscope"
    [seeded] = runs["seeded"].outcomes
    assert seeded.sample["corpus"] == 150 and seeded.sample["corpus_total"] == 1400  # judged ones + distractors
    # which queries were kept: the per-query file of the evalscope run holds exactly the first 20 ids
    per_item = json.loads(next((tmp_path / "evalscope").rglob("per_item/Cranfield_per_item.json")).read_text())
    assert set(per_item["splits"]["test"]["default"]["queries"]) == set(ids)
    ndcg = {m: runs[m]["Cranfield"]["test"]["ndcg_at_10"] for m in runs}
    assert ndcg["evalscope"] > ndcg["seeded"]  # no distractors: an easier search

