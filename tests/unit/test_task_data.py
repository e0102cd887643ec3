"""Built-in task data from either hub, fully offline, against hand-laid hub caches.

Small dataset repos are built from the real data in ../shared/data in the file layout mteb's
hub repos use (what ``datasets.push_to_hub`` writes: ``<config>/<split>-00000-of-00001.parquet``
plus a README.md ``configs:`` block), laid out once in a Hugging Face cache and once in a
ModelScope cache, and loaded through mteb's own loaders by ``load_builtin_data``.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import pytest

from rag_eval.errors import ConfigError, DataError, HubError
from rag_eval.resolve import task_data as td
from tests.conftest import (
    DATA,
    build_retrieval_repo,
    isolate_hubs,
    lay_out_hf_cache,
    reranking_source,
    write_dataset_repo,
)
from tests.hub_replica import plain_dataset as _plain

N_QUERIES = 30


# --------------------------------------------------------------------------- isolation


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """Offline, empty caches, no network probes; library offline flags restored afterwards."""
    import datasets.config as dconfig

    isolate_hubs(monkeypatch, tmp_path, offline_flags=True)
    monkeypatch.setattr(dconfig, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")  # arrow files of each load


@pytest.fixture(autouse=True)
def _quiet_datasets():
    from datasets.utils.logging import disable_progress_bar, enable_progress_bar, is_progress_bar_enabled

    was = is_progress_bar_enabled()
    disable_progress_bar()
    yield
    if was:
        enable_progress_bar()


def _task(name: str):
    import mteb

    return mteb.get_task(name)


# --------------------------------------------------------------------------- repos from real data


def _jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _retrieval_source() -> dict:
    """T2Retrieval (dev) from CMRC 2018: 30 queries with qrels, their passages and 20 others."""
    folder = DATA / "retrieval" / "cmrc2018-zh"
    qrels: dict[str, dict[str, int]] = {}
    for line in (folder / "qrels" / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, did, score = line.split("\t")
        if qid not in qrels and len(qrels) == N_QUERIES:
            continue
        qrels.setdefault(qid, {})[did] = int(score)
    all_queries = {q["_id"]: q["text"] for q in _jsonl(folder / "queries.jsonl")}
    queries = {q: all_queries[q] for q in qrels}
    unjudged = {q: t for q, t in all_queries.items() if q not in qrels and not q.startswith("DEV_0")}
    unjudged = dict(list(unjudged.items())[:3])  # mteb drops queries without qrels
    relevant = {d for docs in qrels.values() for d in docs}
    corpus, others = {}, 0
    for doc in _jsonl(folder / "corpus.jsonl"):
        if doc["_id"] in relevant or others < 20:
            others += doc["_id"] not in relevant
            corpus[doc["_id"]] = {"title": doc["title"], "text": doc["text"]}
    return {"queries": queries, "unjudged": unjudged, "corpus": corpus, "qrels": qrels, "top_ranked": None}


def _reranking_source() -> dict:
    """T2Reranking (dev) from STS-B-zh: ids as mteb's own conversion of C-MTEB's rows made them."""
    rows = [r for r in _jsonl(DATA / "reranking" / "stsb-rerank-zh" / "dev.jsonl") if r["positive"] and r["negative"]]
    return reranking_source(rows[:N_QUERIES], "dev")


def _sts_source() -> dict:
    rows = _jsonl(DATA / "sts" / "lcqmc-zh" / "test.jsonl")[:N_QUERIES]
    return {"rows": [{"sentence1": r["sentence1"], "sentence2": r["sentence2"], "score": r["score"]} for r in rows]}


CASES = {
    # task: (source builder, repo builder)
    "T2Retrieval": (_retrieval_source, lambda root, src: build_retrieval_repo(root, src, "dev", legacy_ids=True)),
    "T2Reranking": (_reranking_source, lambda root, src: build_retrieval_repo(root, src, "dev", legacy_ids=False)),
    "LCQMC": (_sts_source, lambda root, src: write_dataset_repo(root, {"default": {"test": src["rows"]}}, "LCQMC")),
}


@pytest.fixture(scope="session")
def repos(tmp_path_factory) -> dict[str, tuple[dict, Path]]:
    assert (DATA / "README.md").is_file(), f"real test data not found at {DATA} (set RAG_EVAL_DATA)"
    out = {}
    for name, (source, build) in CASES.items():
        src = source()
        root = tmp_path_factory.mktemp(f"repo-{name}")
        build(root, src)
        out[name] = (src, root)
    return out


# --------------------------------------------------------------------------- hub caches


def _lay_out_ms(cache: Path, dataset_id: str, src: Path) -> Path:
    """What modelscope (>= 1.38) writes for a dataset: datasets/<owner>--<name>/snapshots/master."""
    folder = cache / "datasets" / dataset_id.replace("/", "--") / "snapshots" / "master"
    shutil.copytree(src, folder)
    return folder


def _hf_cache(monkeypatch, tmp_path, name: str, repo: Path) -> Path:
    task = _task(name)
    cache = tmp_path / "hf-hub"
    dataset = task.metadata.dataset
    snapshot = lay_out_hf_cache(cache, dataset["path"], repo, dataset["revision"], "dataset")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return snapshot


def _ms_cache(monkeypatch, tmp_path, dataset_id: str, repo: Path) -> Path:
    cache = tmp_path / "ms-cache"
    folder = _lay_out_ms(cache, dataset_id, repo)
    monkeypatch.setenv("MODELSCOPE_CACHE", str(cache))
    return folder


# --------------------------------------------------------------------------- comparisons


def _assert_matches_source(name: str, plain: dict, src: dict) -> None:
    if name == "LCQMC":
        assert set(plain) == {"test"}
        assert plain["test"] == src["rows"]
        return
    assert set(plain) == {("default", "dev")}
    data = plain[("default", "dev")]
    assert {q["id"]: q["text"] for q in data["queries"]} == src["queries"]  # unjudged queries dropped
    assert len(data["queries"]) == N_QUERIES
    assert {d["id"]: {"title": d["title"], "text": d["text"]} for d in data["corpus"]} == src["corpus"]
    assert data["relevant_docs"] == src["qrels"]
    assert data["top_ranked"] == src["top_ranked"]


# --------------------------------------------------------------------------- tests


def test_modelscope_mapping_table():
    assert td.modelscope_dataset_ids("C-MTEB/LCQMC") == ["C-MTEB/LCQMC", "mteb/LCQMC"]
    assert td.modelscope_dataset_ids("mteb/T2Retrieval") == ["mteb/T2Retrieval", "MTEB/T2Retrieval"]
    assert td.modelscope_dataset_ids("someone/else") == ["someone/else"]


def test_modelscope_mapping_overrides(monkeypatch):
    monkeypatch.setitem(td.MODELSCOPE_DATASET_IDS, "mteb/T2Retrieval", "my-org/T2")
    assert td.modelscope_dataset_ids("mteb/T2Retrieval") == ["my-org/T2"]


@pytest.mark.parametrize("name", list(CASES))
def test_builtin_data_is_the_same_from_either_hub(monkeypatch, tmp_path, repos, name):
    src, repo = repos[name]
    class_meta = type(_task(name)).metadata
    repo_id = class_meta.dataset["path"]
    hf_snapshot = _hf_cache(monkeypatch, tmp_path, name, repo)
    ms_folder = _ms_cache(monkeypatch, tmp_path, td.modelscope_dataset_ids(repo_id)[0], repo)

    loaded = {}
    for hub_name, folder in (("huggingface", hf_snapshot), ("modelscope", ms_folder)):
        task = _task(name)
        source = td.resolve_builtin_data(task, hub_name)
        assert source.path.resolve() == folder.resolve() and source.hub == hub_name
        td.load_builtin_data(task, hub_name)
        assert task.data_loaded
        assert task.metadata.dataset == class_meta.dataset  # results still name mteb's repo and revision
        assert "metadata" not in task.__dict__
        loaded[hub_name] = _plain(task)

    assert type(_task(name)).metadata.dataset == {"path": repo_id, "revision": class_meta.dataset["revision"]}
    assert loaded["huggingface"] == loaded["modelscope"]
    _assert_matches_source(name, loaded["huggingface"], src)


def test_loaded_task_is_what_mteb_loads_from_the_folder(monkeypatch, tmp_path, repos):
    """Reference: mteb's own load_data on a copy of the task whose class points at the folder."""
    src, repo = repos["T2Reranking"]
    snapshot = _hf_cache(monkeypatch, tmp_path, "T2Reranking", repo)
    task = _task("T2Reranking")
    td.load_builtin_data(task, "hf")

    ref_cls = type(task)
    meta = ref_cls.metadata.model_copy(update={"dataset": {**ref_cls.metadata.dataset, "path": str(snapshot)}})
    reference = type("RefT2Reranking", (ref_cls,), {"metadata": meta})()
    reference.load_data()
    assert _plain(task) == _plain(reference)
    split = task.dataset["default"]["dev"]
    assert set(split) == {"corpus", "queries", "relevant_docs", "top_ranked"}
    assert all(len(v) == len(src["top_ranked"][q]) for q, v in split["top_ranked"].items())


def test_modelscope_finds_the_capitalised_mirror_and_an_override(monkeypatch, tmp_path, repos):
    src, repo = repos["T2Retrieval"]
    _ms_cache(monkeypatch, tmp_path, "MTEB/T2Retrieval", repo)
    task = _task("T2Retrieval")
    assert td.resolve_builtin_data(task, "ms").dataset_id == "MTEB/T2Retrieval"
    td.load_builtin_data(task, "modelscope")
    _assert_matches_source("T2Retrieval", _plain(task), src)

    _lay_out_ms(tmp_path / "ms-cache", "my-org/t2-copy", repo)
    other = _task("T2Retrieval")
    td.load_builtin_data(other, "modelscope", dataset_id="my-org/t2-copy")
    assert _plain(other) == _plain(task)


def test_already_loaded_task_is_left_alone(monkeypatch):
    task = _task("LCQMC")
    task.data_loaded, task.dataset = True, {"sentinel": 1}
    td.load_builtin_data(task, "huggingface")  # no cache, no error: nothing to do
    assert task.dataset == {"sentinel": 1}


@pytest.mark.parametrize("hub_name", ["huggingface", "modelscope"])
@pytest.mark.parametrize("name", ["T2Retrieval", "T2Reranking", "LCQMC"])
def test_empty_caches_offline_fail_fast_with_one_line(hub_name, name):
    task = _task(name)
    repo_id = task.metadata.dataset["path"]
    start = time.monotonic()
    with pytest.raises(HubError) as err:
        td.load_builtin_data(task, hub_name)
    assert time.monotonic() - start < 5
    assert isinstance(err.value, ConfigError)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"task {name}: ")
    assert repr(repo_id) in msg and hub_name in msg and "offline" in msg
    assert ("hf download" if hub_name == "huggingface" else "modelscope download") in msg
    assert not task.data_loaded and "metadata" not in task.__dict__


def test_unknown_hub_names_the_task():
    with pytest.raises(HubError, match=r"^task LCQMC: unknown hub 'gitee'"):
        td.load_builtin_data(_task("LCQMC"), "gitee")


def test_legacy_retrieval_layout_is_a_one_line_data_error(monkeypatch, tmp_path, repos):
    """A C-MTEB 1.x style copy: corpus and queries as splits of one config, no qrels."""
    src, _repo = repos["T2Retrieval"]
    legacy = tmp_path / "legacy"
    write_dataset_repo(
        legacy,
        {
            "default": {
                "corpus": [{"id": d, "text": c["text"]} for d, c in src["corpus"].items()],
                "queries": [{"id": q, "text": t} for q, t in src["queries"].items()],
            }
        },
        "legacy",
    )
    _ms_cache(monkeypatch, tmp_path, "mteb/T2Retrieval", legacy)
    task = _task("T2Retrieval")
    with pytest.raises(DataError) as err:
        td.load_builtin_data(task, "modelscope")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("task T2Retrieval: ")
    assert "'mteb/T2Retrieval'" in msg and "modelscope" in msg and "missing corpus, queries" in msg
    assert not task.data_loaded and "metadata" not in task.__dict__


def test_broken_snapshot_is_a_one_line_data_error(monkeypatch, tmp_path, repos):
    _src, repo = repos["LCQMC"]
    broken = tmp_path / "broken"
    shutil.copytree(repo, broken)
    (broken / "data" / "test-00000-of-00001.parquet").write_bytes(b"not a parquet file\n")
    _ms_cache(monkeypatch, tmp_path, "C-MTEB/LCQMC", broken)
    task = _task("LCQMC")
    with pytest.raises(DataError) as err:
        td.load_builtin_data(task, "modelscope")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("task LCQMC: ")
    assert "'C-MTEB/LCQMC'" in msg and "modelscope download --dataset C-MTEB/LCQMC" in msg
    assert not task.data_loaded and "metadata" not in task.__dict__


def test_no_hub_library_left_online(monkeypatch, tmp_path, repos):
    """The offline decision reaches datasets too: loading never needs the network."""
    _src, repo = repos["LCQMC"]
    _hf_cache(monkeypatch, tmp_path, "LCQMC", repo)
    td.load_builtin_data(_task("LCQMC"), "huggingface")
    dconfig = sys.modules["datasets.config"]
    assert dconfig.HF_HUB_OFFLINE


def test_metadata_the_instance_had_is_put_back(monkeypatch, tmp_path, repos):
    _src, repo = repos["LCQMC"]
    _ms_cache(monkeypatch, tmp_path, "C-MTEB/LCQMC", repo)
    task = _task("LCQMC")
    own = task.metadata.model_copy(update={"description": "the instance's own"})
    task.metadata = own
    td.load_builtin_data(task, "modelscope")
    assert task.data_loaded and task.metadata is own


def test_metadata_replaced_by_the_loader_keeps_the_repo_id(monkeypatch, tmp_path, repos):
    _src, repo = repos["LCQMC"]
    _hf_cache(monkeypatch, tmp_path, "LCQMC", repo)
    base = type(_task("LCQMC"))

    def load_data(self, **kwargs):
        base.load_data(self, **kwargs)
        self.metadata = self.metadata.model_copy(update={"description": "filtered"})

    task = type("ReplacingLCQMC", (base,), {"load_data": load_data})()
    td.load_builtin_data(task, "huggingface")
    assert task.metadata.description == "filtered"
    assert task.metadata.dataset == base.metadata.dataset


def test_task_with_a_local_folder_path_needs_no_hub(monkeypatch, repos):
    src, repo = repos["T2Reranking"]
    base = type(_task("T2Reranking"))
    meta = base.metadata.model_copy(update={"dataset": {"path": str(repo), "revision": "local"}})
    task = type("LocalT2Reranking", (base,), {"metadata": meta})()
    assert td.resolve_builtin_data(task, "modelscope").hub == "local"
    td.load_builtin_data(task, "modelscope")  # empty caches: only the folder is read
    _assert_matches_source("T2Reranking", _plain(task), src)


def test_aggregate_task_loads_its_tasks_and_fails_fast_offline():
    task = _task("CQADupstackRetrieval")
    first = task.tasks[0]
    start = time.monotonic()
    with pytest.raises(HubError) as err:
        td.load_builtin_data(task, "huggingface")
    assert time.monotonic() - start < 5
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"task {first.metadata.name}: ")
    assert repr(first.metadata.dataset["path"]) in msg
