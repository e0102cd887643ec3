"""The offline replica of the 31 C-MTEB hub repos (tests/hub_replica.py) against the real libraries.

- the table matches mteb's ``MTEB(cmn, v1)`` (tasks, repo ids, pinned revisions, eval splits, task types);
- huggingface_hub and modelscope themselves resolve the caches offline (``snapshot_download(local_files_only)``,
  ``scan_cache_dir``);
- every task loads offline through ``rag_eval.resolve.task_data.load_builtin_data`` from either hub, the two loads
  are equal and equal to the rows written, and mteb itself scores each loaded task to a finite main score;
- the legacy retrieval layout still fails in one line.
"""

from __future__ import annotations

import pytest

from rag_eval.errors import DataError
from rag_eval.resolve import task_data as td
from tests import hub_replica as hr
from tests.conftest import isolate_hubs

KIND_OF_TYPE = {"STS": {"sts"}, "PairClassification": {"nli"}, "Classification": {"classification"},
                "Clustering": {"clustering"}, "Retrieval": {"retrieval"}, "Reranking": {"reranking"}}


@pytest.fixture
def offline(monkeypatch, tmp_path, hub_replica):
    """Offline, no network probes, both hubs' caches pointing at the session's replica."""
    import datasets.config as dconfig
    from datasets.utils.logging import disable_progress_bar, enable_progress_bar, is_progress_bar_enabled

    isolate_hubs(monkeypatch, tmp_path, offline_flags=True)
    monkeypatch.setattr(dconfig, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_replica.hf_cache))
    monkeypatch.setenv("MODELSCOPE_CACHE", str(hub_replica.ms_cache))
    was = is_progress_bar_enabled()
    disable_progress_bar()
    yield hub_replica
    if was:
        enable_progress_bar()


def _task(name: str):
    import mteb

    return mteb.get_task(name)


def _expected(name: str) -> dict:
    """What mteb's loader must give for the rows the builder wrote (plain_dataset's shape)."""
    spec, rows = hr.REPLICA[name], hr.written_rows(name)
    if spec.kind in ("retrieval", "reranking"):
        split = spec.splits[0]
        qrels: dict[str, dict[str, int]] = {}
        for r in rows["default"][split]:
            qrels.setdefault(r["query-id"], {})[r["corpus-id"]] = r["score"]
        top = rows.get("top_ranked")
        return {("default", split): {
            "corpus": rows["corpus"][split],
            "queries": rows["queries"][split],
            "relevant_docs": qrels,
            "top_ranked": None if top is None else {r["query-id"]: r["corpus-ids"] for r in top[split]},
        }}
    renames = {"sent1": "sentence1", "sent2": "sentence2"} if spec.kind == "nli" else {}
    return {split: [{renames.get(k, k): v for k, v in r.items()} for r in split_rows]
            for split, split_rows in rows["default"].items()}


# --------------------------------------------------------------------------- the table


def test_table_is_mteb_cmn_v1():
    import mteb

    tasks = {t.metadata.name: t for t in mteb.get_benchmark("MTEB(cmn, v1)").tasks}
    assert set(hr.REPLICA) == set(tasks) and len(tasks) == 31
    for name, spec in hr.REPLICA.items():
        meta = tasks[name].metadata
        assert (spec.repo_id, spec.revision) == (meta.dataset["path"], meta.dataset["revision"]), name
        assert spec.eval_splits == tuple(meta.eval_splits), name
        assert set(spec.eval_splits) <= set(spec.splits), name
        assert spec.kind in KIND_OF_TYPE[meta.type], name
        assert spec.layout.startswith(("seen: ", "inferred: ")), name
        assert spec.source.startswith(("real", "stand-in")), name
        for split in spec.eval_splits:
            assert hr.rows_available(name, split) > 0 and hr.items_available(name, split) >= 10, name


def test_builder_is_deterministic_and_names_files_as_the_real_repos(tmp_path):
    a = hr.build_hf_cache(tmp_path / "a", ["LCQMC", "Ocnli", "T2Retrieval"])
    b = hr.build_hf_cache(tmp_path / "b", ["LCQMC", "Ocnli", "T2Retrieval"])
    for name in a:
        files = sorted(p.relative_to(a[name]).as_posix() for p in a[name].rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(b[name]).as_posix() for p in b[name].rglob("*") if p.is_file())
        assert all((a[name] / f).read_bytes() == (b[name] / f).read_bytes() for f in files)
    assert sorted(p.name for p in (a["LCQMC"] / "data").iterdir()) == [
        "test-00000-of-00001-cb3f2553acbb3663.parquet", "train-00000-of-00001-83493a6b9e29a4d0.parquet",
        "validation-00000-of-00001-ae04bea7d65ea894.parquet"]
    assert [p.name for p in (a["Ocnli"] / "data").iterdir()] == ["validation-00000-of-00001-c03e72abe2b8cd48.parquet"]
    assert {p.parent.name + "/" + p.name for p in a["T2Retrieval"].rglob("*.parquet")} == {
        "corpus/dev-00000-of-00001.parquet", "queries/dev-00000-of-00001.parquet", "data/dev-00000-of-00001.parquet"}
    readme = (a["LCQMC"] / "README.md").read_text(encoding="utf-8")
    assert "- config_name: default\n  data_files:\n  - split: train\n    path: data/train-*\n" in readme


def test_caches_are_what_the_hub_libraries_resolve_offline(hub_replica, tmp_path):
    import huggingface_hub
    from modelscope import snapshot_download as ms_snapshot_download

    info = huggingface_hub.scan_cache_dir(hub_replica.hf_cache)
    assert not info.warnings
    assert {r.repo_id for r in info.repos} == {s.repo_id for s in hr.REPLICA.values()}
    pinned = {s.repo_id: s.revision for s in hr.REPLICA.values()}
    for repo in info.repos:  # refs/main names mteb's pinned commit, the only snapshot
        assert repo.repo_type == "dataset" and set(repo.refs) == {"main"}
        assert [rev.commit_hash for rev in repo.revisions] == [pinned[repo.repo_id]]
    for name, spec in hr.REPLICA.items():
        got = huggingface_hub.snapshot_download(spec.repo_id, repo_type="dataset", revision=spec.revision,
                                                cache_dir=hub_replica.hf_cache, local_files_only=True)
        assert got == str(hub_replica.hf[name])
        # the snapshot holds symlinks into blobs/, named by the sha256 of their content
        for f in hub_replica.hf[name].rglob("*.parquet"):
            assert f.is_symlink() and f.resolve().parent.name == "blobs"
        got = ms_snapshot_download(spec.repo_id, repo_type="dataset", cache_dir=str(hub_replica.ms_cache),
                                   local_files_only=True)
        assert got == str(hub_replica.ms[name])
        assert sorted(p.relative_to(got).as_posix() for p in hub_replica.ms[name].rglob("*") if p.is_file()) == \
            sorted(hr.repo_files(name))

    # ModelScope ids are a parameter: mteb/<Name> for the C-MTEB repos
    renamed = hr.build_ms_cache(tmp_path / "ms", ["LCQMC", "T2Retrieval"], lambda r: "mteb/" + r.split("/")[1])
    assert renamed["LCQMC"] == tmp_path / "ms" / "datasets" / "mteb--LCQMC" / "snapshots" / "master"
    assert ms_snapshot_download("mteb/LCQMC", repo_type="dataset", cache_dir=str(tmp_path / "ms"),
                                local_files_only=True) == str(renamed["LCQMC"])
    by_task = hr.build_ms_cache(tmp_path / "ms2", ["LCQMC"], {"LCQMC": "C-MTEB/lcqmc-copy"})
    assert by_task["LCQMC"].parent.parent.name == "C-MTEB--lcqmc-copy"


# --------------------------------------------------------------------------- every task, both hubs, loaded


@pytest.mark.parametrize("name", list(hr.REPLICA))
def test_task_loads_from_both_hubs(offline, name):
    """Loading only: tests/eval/test_cmteb_hub.py scores every task through rag_eval (mteb's evaluators)."""
    loaded = {}
    for hub_name, folder in (("huggingface", offline.hf[name]), ("modelscope", offline.ms[name])):
        task = _task(name)
        source = td.resolve_builtin_data(task, hub_name)
        assert source.path.resolve() == folder.resolve() and source.hub == hub_name
        td.load_builtin_data(task, hub_name)
        assert task.data_loaded
        loaded[hub_name] = (task, hr.plain_dataset(task))
    task, plain = loaded["huggingface"]
    assert plain == loaded["modelscope"][1]
    assert plain == _expected(name)
    spec = hr.REPLICA[name]
    for split in spec.eval_splits:
        key = ("default", split) if spec.kind in ("retrieval", "reranking") else split
        n = len(plain[key]["queries"]) if isinstance(key, tuple) else len(plain[key])
        assert n == hr.rows_available(name, split)



# --------------------------------------------------------------------------- the legacy layout


@pytest.mark.parametrize("hub_name", ["huggingface", "modelscope"])
def test_legacy_retrieval_layout_fails_in_one_line(monkeypatch, tmp_path, hub_name):
    isolate_hubs(monkeypatch, tmp_path, offline_flags=True)
    cache = tmp_path / "legacy"
    folder = hr.build_legacy_retrieval_cache(cache, hub_name)
    repo = folder.parents[1]  # <cache>/[datasets/]<...>T2Retrieval/snapshots/<revision>
    assert repo.name.endswith("T2Retrieval") and repo.with_name(repo.name + "-qrels").is_dir()
    monkeypatch.setenv("HF_HUB_CACHE" if hub_name == "huggingface" else "MODELSCOPE_CACHE", str(cache))
    task = _task("T2Retrieval")
    with pytest.raises(DataError) as err:
        td.load_builtin_data(task, hub_name)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("task T2Retrieval: ")
    assert "'mteb/T2Retrieval'" in msg and hub_name in msg and "missing corpus, queries" in msg
    assert not task.data_loaded
