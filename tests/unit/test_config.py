"""Config groups, task registry and config validation (no model runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag_eval.config import load_config
from rag_eval.errors import ConfigError
from tests.conftest import CONF
from tests.conftest import compose as _compose


def _group_tasks(group: str) -> list[str]:
    """The task names an eval group resolves to (cmteb* groups name mteb's benchmark, not a list)."""
    from rag_eval.resolve.tasks import resolve_tasks

    return [t.metadata.name for t in resolve_tasks(load_config(_compose("model=m3e", f"eval={group}")).eval)]


def test_cmteb_is_the_31_cmteb_tasks_and_resolves_offline():
    import mteb

    from rag_eval.resolve.tasks import resolve_tasks

    names = _group_tasks("cmteb")
    benchmark = {t.metadata.name for t in mteb.get_benchmark("MTEB(cmn, v1)").tasks}
    assert len(names) == len(set(names)) == 31
    assert set(names) == benchmark
    run = load_config(_compose("model=m3e", "eval=cmteb"))
    tasks = resolve_tasks(run.eval)
    assert [t.metadata.name for t in tasks] == list(names)
    assert {t.metadata.type for t in tasks} == {
        "Retrieval", "Reranking", "STS", "PairClassification", "Classification", "Clustering"}
    assert not any(t.data_loaded for t in tasks)


def test_cmteb_subsets_partition_cmteb():
    full = _group_tasks("cmteb")
    parts = [_group_tasks(p.stem) for p in sorted((CONF / "eval").glob("cmteb_*.yaml"))]
    assert len(parts) == 6
    assert sorted(n for part in parts for n in part) == sorted(full)


@pytest.mark.parametrize("group", ["model", "reranker", "eval"])
def test_every_config_file_composes_and_validates(group, minilm_path):
    from rag_eval.resolve.tasks import resolve_tasks

    for path in sorted((CONF / group).glob("*.yaml")):
        override = f"{group}={path.stem}"
        extra = ["model=minilm"] if group == "reranker" else []
        if "reranker_format: flag_layerwise" in path.read_text():  # a preset that names a refused format
            with pytest.raises(ConfigError, match="flag_layerwise: .* it is not supported"):
                load_config(_compose(override, *extra))
            continue
        run = load_config(_compose(override, *extra))
        if group == "reranker":
            assert run.cross_encoder is not None and run.cross_encoder.is_cross_encoder, path
        if group == "eval":
            assert resolve_tasks(run.eval), path


def test_unknown_task_suggests_names():
    from rag_eval.resolve.tasks import resolve_tasks

    run = load_config({"model": {"model_name_or_path": "x/y"}, "eval": {"tasks": ["T2Retrival"]}})
    with pytest.raises(ConfigError, match=r"unknown task 'T2Retrival': did you mean T2Retrieval"):
        resolve_tasks(run.eval)


@pytest.mark.parametrize(
    "cfg,message",
    [
        ({"model": {"model_name_or_path": "m"}, "eval": {"tasks": ["ATEC"], "limts": 3}},
         "unknown config key 'eval.limts': did you mean 'eval.limits'?"),
        ({"model": {"model_name_or_path": "m", "pooling": "cls"}, "eval": {"tasks": ["ATEC"]}},
         "unknown config key 'model[0].pooling': did you mean 'model[0].pooling_mode'?"),
        ({"model": {"model_name_or_path": "m", "pooling_mode": "avg"}, "eval": {"tasks": ["ATEC"]}},
         "model[0].pooling_mode is 'avg': use one of cls, lasttoken, max, mean, mean_sqrt_len_tokens, weightedmean"),
        ({"model": {"model_name_or_path": "m"}, "eval": {"tasks": ["ATEC"], "limits": 0}},
         "eval.limits is 0: use a positive integer, or null for all"),
        ({"model": {"model_name_or_path": "m"}, "eval": {"tasks": ["ATEC"], "limits": "ten"}},
         "eval.limits must be an integer, got 'ten'"),
        ({"model": {"model_name_or_path": "m"}, "eval": {"tasks": ["ATEC"], "top_k": -1}},
         "eval.top_k is -1: use a positive integer (default 100)"),
        ({"model": {"model_name_or_path": "m", "is_cross_encoder": True}, "eval": {"tasks": ["ATEC"]}},
         "model[0] is a cross-encoder: the first model must be a bi-encoder"),
        ({"model": [{"model_name_or_path": "a"}, {"model_name_or_path": "b", "is_cross_encoder": True},
                    {"model_name_or_path": "c"}], "eval": {"tasks": ["ATEC"]}},
         "model[2] is a bi-encoder listed after the cross-encoder model[1]: list the bi-encoders first, then the "
         "cross-encoders (every bi-encoder x cross-encoder pair runs two-stage)"),
        ({"model": {"model_name_or_path": "m"}, "eval": {"tasks": ["ATEC"], "limits_mode": "first"}},
         "eval.limits_mode is 'first': use one of seeded, evalscope"),
    ],
)
def test_bad_config_is_one_line(cfg, message):
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_evalscope_flat_shape_and_instructions(tmp_path: Path):
    run = load_config({"eval_backend": "RAGEval", "eval_config": {
        "tool": "MTEB", "model_name_or_path": "OpenBMB/MiniCPM-Reranker", "pooling_mode": None,
        "max_seq_length": 512, "model_kwargs": {"torch_dtype": "auto"}, "encode_kwargs": {"batch_size": 32},
        "tasks": ["T2Retrieval"], "instructions": {"T2Retrieval": "为这个问题生成一个检索用的表示"},
        "verbosity": 2, "output_folder": str(tmp_path), "overwrite_results": True, "limits": 100,
        "hub": "modelscope"}})
    assert run.bi_encoder.prompts == {"T2Retrieval-query": "为这个问题生成一个检索用的表示"}
    assert run.bi_encoder.hub == "modelscope" and run.eval.limits == 100
    with pytest.raises(ConfigError, match="eval_backend is 'OpenCompass'"):
        load_config({"eval_backend": "OpenCompass", "eval_config": {}})


def test_evalscope_1x_shape_runs_unchanged(tmp_path: Path, data_dir):
    """EvalScope 1.x: ``models``, ``task_names``, ``custom_tasks`` (qrels.jsonl layout), eval encode_kwargs."""
    import json

    from rag_eval.resolve.tasks import resolve_tasks

    cran = data_dir / "retrieval/cranfield-en"
    custom = tmp_path / "custom"  # the same data in EvalScope's layout: one qrels.jsonl, no split
    custom.mkdir()
    for name in ("corpus.jsonl", "queries.jsonl"):
        (custom / name).symlink_to(cran / name)
    lines = (cran / "qrels/test.tsv").read_text(encoding="utf-8").splitlines()[1:]
    (custom / "qrels.jsonl").write_text("".join(
        json.dumps({"query-id": q, "corpus-id": d, "score": int(s)}) + "\n"
        for q, d, s in (line.split("\t") for line in lines)), encoding="utf-8")
    run = load_config({"eval_backend": "RAGEval", "eval_config": {"tool": "mteb", "models": [
        {"model_name": "AI-ModelScope/m3e-base", "encode_kwargs": {"batch_size": 8}},
        {"model_name_or_path": "BAAI/bge-reranker-base", "is_cross_encoder": True}],
        "eval": {"task_names": ["T2Retrieval"], "custom_tasks": [{"name": "MyDocs", "data_path": str(custom),
                                                                   "eval_splits": ["dev"]}],
                 "encode_kwargs": {"batch_size": 64, "normalize_embeddings": True}, "top_k": 10, "limits": 5}}})
    bi, ce = run.models
    assert bi.model_name_or_path == "AI-ModelScope/m3e-base"
    # EvalScope's meaning: the eval-level encode_kwargs go to every call, over the model's own (issue 14)
    assert bi.encode_kwargs == {"batch_size": 64, "normalize_embeddings": True}
    assert bi.is_api and bi.model_name == "AI-ModelScope/m3e-base"  # EvalScope: model_name = a served model
    assert ce.encode_kwargs == {"batch_size": 64, "normalize_embeddings": True}
    assert run.eval.top_k == 10 and run.eval.limits == 5
    t2, mine = resolve_tasks(run.eval)
    assert t2.metadata.name == "T2Retrieval"
    assert mine.metadata.name == "MyDocs" and mine.metadata.eval_splits == ["dev"]
    mine.load_data()
    tsv = load_config({"model": {"model_name_or_path": "x"},
                       "eval": {"tasks": [{"name": "Tsv", "type": "Retrieval", "path": str(cran)}]}})
    reference = resolve_tasks(tsv.eval)[0]
    reference.load_data()
    got, want = mine.dataset["default"]["dev"], reference.dataset["default"]["test"]
    assert got["relevant_docs"] == want["relevant_docs"] and len(got["relevant_docs"]) == 225
    assert got["corpus"]["text"] == want["corpus"]["text"] and len(got["corpus"]) == 1400
    assert got["queries"]["text"] == want["queries"]["text"]


@pytest.mark.parametrize("eval_cfg,message", [
    ({"custom_tasks": [{"name": "X"}]}, "eval.custom_tasks[0] needs a data_path"),
    ({"custom_tasks": [{"data_path": "/x", "eval_splits": ["dev", "test"]}]},
     "eval.custom_tasks[0].eval_splits has 2 splits"),
    ({"custom_tasks": [{"data_path": "/x", "eval_split": ["dev"]}]},
     "unknown config key 'eval.custom_tasks[0].eval_split': did you mean 'eval.custom_tasks[0].eval_splits'?"),
])
def test_evalscope_1x_bad_eval_is_one_line(eval_cfg, message):
    with pytest.raises(ConfigError) as info:
        load_config({"eval_backend": "RAGEval", "eval_config": {
            "tool": "MTEB", "models": [{"model_name_or_path": "x"}], "eval": eval_cfg}})
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="both 'model' and 'models'"):
        load_config({"eval_backend": "RAGEval", "eval_config": {
            "model": [{"model_name_or_path": "x"}], "models": [{"model_name_or_path": "x"}], "eval": {}}})


def test_evalscope_task_filters_select_as_evalscope_does(caplog):
    """task_types / languages select from mteb's registry when no task is named; with task_names they
    are ignored (as EvalScope ignores them), with a warning; splits has no effect (logged)."""
    from rag_eval.resolve.tasks import resolve_tasks

    def run(ev):
        return load_config({"eval_backend": "RAGEval", "eval_config": {
            "tool": "MTEB", "models": [{"model_name_or_path": "x"}], "eval": ev}})

    picked = run({"task_types": ["PairClassification"], "languages": ["cmn"]})
    assert picked.eval.top_k == 10 and picked.models[0].max_seq_length == 512  # EvalScope 1.x defaults
    names = {t.metadata.name for t in resolve_tasks(picked.eval)}
    assert names == {"Cmnli", "Ocnli", "PawsXPairClassification"}
    with caplog.at_level("WARNING", logger="rag_eval.config"):
        named = run({"task_names": ["ATEC"], "task_types": ["Retrieval"], "splits": {"ATEC": ["test"]}})
    assert [t.metadata.name for t in resolve_tasks(named.eval)] == ["ATEC"]
    assert "eval.task_types ignored: task_names are given" in caplog.text and "eval.splits has no effect" in caplog.text


@pytest.mark.parametrize("model,message", [
    ({"model_name": "m", "is_cross_encoder": True}, "model[1].api_base is missing: an API reranker needs"),
    ({"model_name": "m", "api_base": "127.0.0.1:8000", "is_cross_encoder": True},
     "model[1].api_base is '127.0.0.1:8000'"),
    ({"model_name": "m", "api_base": "http://h/v1", "is_cross_encoder": True, "rerank_schema": "jina"},
     "model[1].rerank_schema is 'jina': use one of cohere, tei"),
    ({"model_name": "m", "api_base": "http://h/v1", "is_cross_encoder": True, "request_timeout": 0},
     "model[1].request_timeout is 0.0: use a number above 0"),
])
def test_bad_api_model_is_one_line(model, message):
    with pytest.raises(ConfigError) as info:
        load_config({"model": {"model_name_or_path": "x"}, "reranker": model, "eval": {"tasks": ["ATEC"]}})
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_reranker_alone_needs_rerankable_tasks(data_dir):
    """EvalScope's rule: a bi-encoder and a reranker with no Retrieval task -> the reranker alone; a task a
    cross-encoder cannot score stops the run in one line, before any model loads."""
    from rag_eval import run_task

    with pytest.raises(ConfigError) as info:
        run_task({"model": {"model_name_or_path": "./not/loaded"},
                  "reranker": {"model_name_or_path": "./not/loaded/either", "is_cross_encoder": True},
                  "eval": {"tasks": [{"name": "Pairs", "type": "PairClassification",
                                      "path": str(data_dir / "pair_classification/atec-zh")}]}})
    assert str(info.value).startswith("no Retrieval task, so the reranker runs alone (EvalScope's rule), and a "
                                      "cross-encoder cannot score Pairs (PairClassification)")


def test_device_list_from_the_command_line():
    run = load_config(_compose("model.device=[cuda:0,cuda:1]", "reranker=ms_marco_minilm_local",
                               "reranker.device=cuda:1"))
    assert run.bi_encoder.device == ["cuda:0", "cuda:1"] and run.cross_encoder.device == "cuda:1"
    with pytest.raises(ConfigError, match=r"model\[1\]\.device is a list"):
        load_config(_compose("reranker=ms_marco_minilm_local", "reranker.device=[cuda:0,cuda:1]"))
