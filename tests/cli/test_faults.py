"""Faults during a run: Ctrl-C / SIGTERM, a disk that fills up or turns read-only, corrupt files.

Each ends in one line (exit 130 for a signal, 2 for the disk), no traceback, no half-written file,
and nothing already finished is lost: a rerun with ``overwrite_results: false`` resumes, and a corrupt
cache chunk, result file or predictions file is detected, logged once and recomputed.

The disk tests use a real small tmpfs (``mount -t tmpfs``, root only: skipped where it is refused)
and, for the full disk, also a real file-size limit (``RLIMIT_FSIZE``: the write fails with EFBIG),
which needs no privilege.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import pytest

from rag_eval.errors import StorageError
from tests.conftest import ROOT, cli_env, start_cli
from tests.servers.faulty import MODEL as FAULTY_MODEL
from tests.servers.faulty import FaultyServer, vectors

DEMO = ROOT / "rag_eval" / "demo_data"
MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"
PAGE = 4096


def _tasks_override(tasks: list[dict]) -> str:
    """``eval.tasks=[{name: ..., type: ..., path: ...}, ...]`` as Hydra's override grammar writes it."""
    return "eval.tasks=[" + ", ".join("{" + ", ".join(f"{k}: {v}" for k, v in t.items()) + "}" for t in tasks) + "]"


def _results(out: Path) -> dict[str, Path]:
    return {p.stem: p for p in out.glob("*/*/*.json") if p.name != "model_meta.json"}


def _wait_for(predicate, proc: subprocess.Popen | None = None, timeout: float = 400) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the run ended early (rc {proc.returncode}): {proc.stderr.read()[-2000:]}")
        time.sleep(0.2)
    pytest.fail("timed out waiting")


def _leftovers(folder: Path) -> list[Path]:
    """Half-written files: atomic_write's temp files, and the write check's."""
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".rag_eval-write-check")]


# --------------------------------------------------------------------------- Ctrl-C and SIGTERM

SIGNAL_TASKS = [
    {"name": "StsbSTS", "type": "STS", "path": DEMO / "sts/stsb-zh-mini"},
    {"name": "CmrcRetrieval", "type": "Retrieval", "path": DEMO / "retrieval/cmrc2018-zh-mini"},
    {"name": "StsbPairs", "type": "PairClassification", "path": DEMO / "pair_classification/stsb-pairs-zh-mini"},
]


def _cmrc_texts() -> set[str]:
    folder = DEMO / "retrieval/cmrc2018-zh-mini"
    rows = [json.loads(line) for name in ("queries.jsonl", "corpus.jsonl")
            for line in (folder / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    return {r["text"] for r in rows}


class _Gate:
    """A served embedder that holds every request carrying a CmrcRetrieval text until released: the signal
    lands while the second task runs, however fast the machine (a slow server, as users meet them)."""

    def __init__(self) -> None:
        self.hold, self.texts = True, _cmrc_texts()
        self.held, self.released = threading.Event(), threading.Event()

    def embed(self, texts: list, n: int) -> str:
        if self.hold and any(t in self.texts for t in texts):
            self.held.set()
            self.released.wait(120)
        # a fixed vector per text (character-hash counts): the same text always gets the same embedding
        vecs = []
        for text in texts:
            v = [0.0] * 16
            for ch in text:
                v[zlib.crc32(ch.encode()) % 16] += 1.0
            vecs.append([x + 0.01 for x in v])
        return vectors(texts, lambda i: vecs[i])

    def release(self) -> None:
        self.hold = False
        self.released.set()


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_cleanly_and_the_rerun_resumes(tmp_path, signum):
    """The first task finishes, the signal lands in the second one: one line naming both, exit 130;
    the rerun (SIGINT case) runs only the unfinished tasks, and the scores equal an uninterrupted run."""
    from mteb import TaskResult

    gate = _Gate()
    with FaultyServer(embed=gate.embed) as srv:
        out = tmp_path / "out"
        args = ["model=api", f"model.api_base={srv.api_base}", f"model.model_name={FAULTY_MODEL}",
                _tasks_override(SIGNAL_TASKS), "eval.limits=40", f"eval.output_folder={out}", "eval.verbosity=1",
                "eval.overwrite_results=false", f"hydra.run.dir={tmp_path}/h"]
        proc = start_cli(args, start_new_session=True)  # its own process group: the signal reaches it as Ctrl-C does
        _wait_for(lambda: "StsbSTS" in _results(out) and gate.held.is_set(), proc)
        os.killpg(proc.pid, signum)
        try:
            stdout, stderr = proc.communicate(timeout=300)
        finally:
            gate.release()
        name = signal.Signals(signum).name
        assert proc.returncode == 130, stderr[-3000:]
        assert "Traceback" not in stderr
        lines = stderr.splitlines()
        assert len(lines) == 1, stderr
        done = _results(out)
        finished = [t["name"] for t in SIGNAL_TASKS if t["name"] in done]
        unfinished = [t["name"] for t in SIGNAL_TASKS if t["name"] not in done]
        assert finished == ["StsbSTS"] and unfinished == ["CmrcRetrieval", "StsbPairs"], (finished, unfinished)
        assert lines[0] == (f"rag_eval: interrupted ({name}): finished (on disk): {', '.join(finished)}; "
                            f"not finished: {', '.join(unfinished)}; rerun with eval.overwrite_results=false to resume")
        assert not _leftovers(out)
        for path in done.values():
            assert TaskResult.from_disk(path).scores  # every finished file is whole
        assert "StsbSTS" in (out / "summary.csv").read_text(encoding="utf-8")  # the report covers what finished
        if signum == signal.SIGTERM:
            return

        stamps = {task: path.stat().st_mtime_ns for task, path in done.items()}
        proc = start_cli(args)
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-3000:]
        assert stderr == ""
        files = _results(out)
        assert set(files) == {t["name"] for t in SIGNAL_TASKS}
        assert {t: files[t].stat().st_mtime_ns for t in stamps} == stamps  # finished tasks were not run again

        from rag_eval import run_task

        straight = run_task({"model": {"model_name": FAULTY_MODEL, "api_base": srv.api_base},
                             "eval": {"tasks": [{**t, "path": str(t["path"])} for t in SIGNAL_TASKS], "limits": 40,
                                      "output_folder": str(tmp_path / "straight"), "verbosity": 0}})
    for task, path in files.items():
        resumed = TaskResult.from_disk(path)
        split = next(iter(resumed.scores))
        assert resumed.scores[split][0]["main_score"] == pytest.approx(straight[task][split]["main_score"], abs=1e-6)


def _handles_sigterm(pid: int) -> bool:
    """Whether ``pid`` catches SIGTERM (Linux: /proc/<pid>/status SigCgt): rag_eval's ``__main__`` is running."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next((line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), "0")
    return bool(int(caught, 16) & (1 << (signal.SIGTERM - 1)))


@pytest.mark.subprocess
@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc to see the handler")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_while_starting_is_one_line(tmp_path, signum):
    """A signal while the CLI still imports Hydra (or later, before any task): one line, exit 130, nothing
    written. It is sent as soon as ``__main__`` handles SIGTERM, i.e. during its imports."""
    out = tmp_path / "out"
    proc = start_cli([f"eval.output_folder={out}", f"hydra.run.dir={tmp_path}/h", "eval.verbosity=0"])
    deadline = time.monotonic() + 60
    while not _handles_sigterm(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)  # the imports it guards take a few hundred ms: the signal lands inside them
    os.kill(proc.pid, signum)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    assert stderr == (f"rag_eval: interrupted ({signal.Signals(signum).name}) while starting, before any task "
                      "started; nothing was written\n")
    assert not _results(out)


def test_interrupt_line_names_sweep_stages_and_skipped_tasks(tmp_path, monkeypatch):
    """The line after a signal: each top_k of a sweep on its own, a task the model cannot score (BM25 on
    STS) neither finished nor unfinished, tasks never reached as not finished."""
    from types import SimpleNamespace

    from rag_eval import pipeline, report
    from rag_eval.errors import RunInterrupted, Terminated
    from rag_eval.results import TaskOutcome

    monkeypatch.setattr(report, "write_reports", lambda folder: [])
    outcomes = [TaskOutcome(task="T2Retrieval", task_type="Retrieval", model="bm25", stage="stage1"),
                TaskOutcome(task="T2Retrieval", task_type="Retrieval", model="ce", stage="stage2", top_k=20),
                TaskOutcome(task="T2Retrieval", task_type="Retrieval", model="ce", stage="stage2", top_k=10),
                TaskOutcome(task="ATEC", task_type="STS", model="bm25", stage="stage1", status="skipped")]
    outcomes[0].finished = outcomes[1].finished = True
    tasks = [SimpleNamespace(metadata=SimpleNamespace(name=n)) for n in ("T2Retrieval", "ATEC", "LCQMC")]
    error = pipeline.interrupted(Terminated(), tasks, outcomes, tmp_path)
    assert isinstance(error, RunInterrupted) and isinstance(error, KeyboardInterrupt)
    assert str(error) == ("interrupted (SIGTERM): finished (on disk): T2Retrieval/stage1, T2Retrieval/stage2@top_k=20; "
                          "skipped (the model cannot score them): ATEC/stage1; not finished: "
                          "T2Retrieval/stage2@top_k=10, LCQMC; rerun with eval.overwrite_results=false to resume")
    assert error.unfinished == ["T2Retrieval/stage2@top_k=10", "LCQMC"]
    assert not (tmp_path / "failures.json").exists()


# --------------------------------------------------------------------------- a full or read-only disk


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs at ``tmp_path/disk`` (a real file system that fills up and can turn read-only)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()[:100]}); the RLIMIT_FSIZE test covers "
                    "a failing write")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _fill(disk: Path, leave_pages: int = 0) -> None:
    """Fill ``disk`` up, then free exactly ``leave_pages`` pages."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    size = filler.stat().st_size
    os.truncate(filler, max(0, (-(-size // PAGE) - leave_pages) * PAGE))
    st = os.statvfs(disk)
    assert st.f_bavail * st.f_frsize == leave_pages * PAGE


def _remount(disk: Path, mode: str) -> None:
    for _ in range(50):  # EBUSY while a file is open for writing there: try again
        if subprocess.run(["mount", "-o", f"remount,{mode}", str(disk)], capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    pytest.fail(f"could not remount {disk} {mode}")


def _run_cfg(out: Path, minilm_path: str, tasks: list[dict], **ev) -> dict:
    return {"model": {"model_name_or_path": minilm_path, "name": MINILM_NAME, "encode_kwargs": {"batch_size": 64}},
            "eval": {"tasks": [{**t, "path": str(t["path"])} for t in tasks], "output_folder": str(out),
                     "verbosity": 0, **ev}}


RETRIEVAL = {"name": "CmrcRetrieval", "type": "Retrieval", "path": DEMO / "retrieval/cmrc2018-zh-mini"}
STS = {"name": "StsbSTS", "type": "STS", "path": DEMO / "sts/stsb-zh-mini"}


@pytest.mark.subprocess
def test_full_disk_is_refused_before_any_model_loads(small_disk):
    out = small_disk / "out"
    out.mkdir()
    _fill(small_disk)
    proc = subprocess.run([sys.executable, "-m", "rag_eval", f"eval.output_folder={out}", "eval.verbosity=0"],
                          cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == (f"rag_eval: error: eval.output_folder {out} is not writable (no space left on the device "
                           "(ENOSPC)): choose a folder you can write, e.g. eval.output_folder=./outputs\n")
    assert not _leftovers(small_disk) and not (out / ".hydra").exists()


@pytest.mark.slow
def test_disk_full_while_a_result_file_is_written(small_disk, minilm_path):
    """One page left: the check passes, the embeddings are cached, the result file does not fit.
    The old result file stays as it was; no temp file is left; the error names the file."""
    from rag_eval import run_task

    out = small_disk / "out"
    first = run_task(_run_cfg(out, minilm_path, [RETRIEVAL], limits=20, corpus_size=40))
    path = first.outcomes[0].path
    before = path.read_bytes()
    assert len(before) > PAGE
    _fill(small_disk, leave_pages=1)
    with pytest.raises(StorageError) as info:
        run_task(_run_cfg(out, minilm_path, [RETRIEVAL], limits=20, corpus_size=40))
    assert str(info.value) == (f"cannot write {path}: no space left on the device (ENOSPC): free some space or "
                               "point eval.output_folder at a larger disk; nothing half-written is left and finished "
                               "tasks stay on disk (rerun with eval.overwrite_results=false to resume)")
    assert path.read_bytes() == before
    assert not _leftovers(small_disk)


@pytest.mark.slow
@pytest.mark.subprocess
def test_disk_full_while_a_cache_chunk_is_written(small_disk):
    """Two pages left: model_meta.json fits, the first embedding chunk does not: one line naming it, exit 2."""
    out = small_disk / "out"
    _fill(small_disk, leave_pages=2)
    proc = subprocess.run([sys.executable, "-m", "rag_eval", _tasks_override([STS]), "eval.limits=20",
                           f"eval.output_folder={out}", f"hydra.run.dir={small_disk.parent}/h", "eval.verbosity=0"],
                          cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr[-3000:]
    cache = out / ".cache" / "embeddings"
    assert lines[0].startswith(f"rag_eval: error: cannot write {cache}/"), lines[0]
    assert ".npy: no space left on the device (ENOSPC)" in lines[0]
    assert not _leftovers(small_disk)
    assert not list(cache.rglob("chunk-*"))  # no chunk, whole or half


def _no_xfsz_and_limit(limit: int):
    def preexec():  # a write past the limit fails with EFBIG instead of killing the process with SIGXFSZ
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    return preexec


@pytest.mark.slow
@pytest.mark.subprocess
def test_file_size_limit_while_a_chunk_is_written(tmp_path):
    """Without a tmpfs: a real write that fails (RLIMIT_FSIZE 4 KiB, EFBIG) at the first embedding chunk."""
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "rag_eval", _tasks_override([STS]), "eval.limits=20",
                           f"eval.output_folder={out}", f"hydra.run.dir={tmp_path}/h", "hydra.output_subdir=null",
                           "eval.verbosity=0"],
                          cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=600,
                          preexec_fn=_no_xfsz_and_limit(PAGE))
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith(f"rag_eval: error: cannot write {out / '.cache' / 'embeddings'}/"), lines[0]
    assert ".npy: file too large (EFBIG" in lines[0]
    assert not _leftovers(out) and not list(out.rglob("chunk-*"))


@pytest.mark.subprocess
def test_read_only_output_folder_is_refused_up_front(small_disk):
    out = small_disk / "out"
    out.mkdir()
    _remount(small_disk, "ro")
    proc = subprocess.run([sys.executable, "-m", "rag_eval", f"eval.output_folder={out}", "eval.verbosity=0"],
                          cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=120)
    expected = (f"eval.output_folder {out} is not writable (read-only file system (EROFS)): choose a folder you can "
                "write, e.g. eval.output_folder=./outputs")
    assert (proc.returncode, proc.stderr) == (2, f"rag_eval: error: {expected}\n")

    from rag_eval import run_task

    with pytest.raises(StorageError) as info:  # the plugin entry checks the same, before any model loads
        run_task({"model": {"model_name_or_path": "./no/such/model"},
                  "eval": {"tasks": ["ATEC"], "output_folder": str(out)}})
    assert str(info.value) == expected


def test_output_folder_that_cannot_be_created_is_one_line():
    from rag_eval import run_task

    with pytest.raises(StorageError, match=r"^eval\.output_folder /proc/forbidden cannot be created "
                                           r"\(No such file or directory\): choose a folder you can write"):
        run_task({"model": {"model_name_or_path": "./no/such/model"},
                  "eval": {"tasks": ["ATEC"], "output_folder": "/proc/forbidden"}})


@pytest.mark.slow
def test_output_folder_turns_read_only_mid_run(small_disk, minilm_path):
    """The first task is on disk when the folder turns read-only; the next write stops the run in one line."""
    from mteb import TaskResult

    from rag_eval import run_task

    out = small_disk / "out"
    tasks = [STS, RETRIEVAL]
    first = out / "sentence-transformers__all-MiniLM-L6-v2"

    def turn_read_only():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not list(first.glob("*/StsbSTS.json")):
            time.sleep(0.05)
        _remount(small_disk, "ro")

    watcher = threading.Thread(target=turn_read_only, daemon=True)
    watcher.start()
    with pytest.raises(StorageError) as info:
        run_task(_run_cfg(out, minilm_path, tasks, limits=30))
    watcher.join()
    message = str(info.value)
    assert message.startswith(f"cannot write {out}/") and ": read-only file system (EROFS): " in message, message
    sts = next(first.glob("*/StsbSTS.json"))
    assert TaskResult.from_disk(sts).scores and not list(first.glob("*/CmrcRetrieval.json"))
    assert not _leftovers(small_disk)


# --------------------------------------------------------------------------- corrupt files


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory, minilm_path):
    """One clean run of a small STS task: its output folder (results + embedding cache) and scores."""
    from rag_eval import run_task

    out = tmp_path_factory.mktemp("clean") / "out"
    scores = run_task(_run_cfg(out, minilm_path, [STS], limits=30))
    return out, scores["StsbSTS"]["test"]["main_score"]


def _corrupt(chunk: Path, how: str) -> None:
    npy, keys = chunk.with_suffix(".npy"), chunk.with_suffix(".json")
    if how == "npy-garbage":
        npy.write_bytes(b"\x93NUMPY garbage, not an array" * 3)
    elif how == "npy-truncated":
        npy.write_bytes(npy.read_bytes()[:200])
    elif how == "json-garbage":
        keys.write_text('["abc", ', encoding="utf-8")
    elif how == "count-mismatch":
        keys.write_text(json.dumps(json.loads(keys.read_text(encoding="utf-8"))[:-1]), encoding="utf-8")
    elif how == "not-a-list":
        keys.write_text('{"a": 1}', encoding="utf-8")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["npy-garbage", "npy-truncated", "json-garbage", "count-mismatch", "not-a-list"])
def test_corrupt_embedding_chunk_is_recomputed_and_logged_once(tmp_path, clean_run, minilm_path, caplog, how):
    from rag_eval import run_task

    src, clean_score = clean_run
    out = tmp_path / "out"
    shutil.copytree(src, out)
    chunks = sorted((out / ".cache").rglob("chunk-*.json"))
    assert len(chunks) == 2  # sentence1s, then sentence2s
    _corrupt(chunks[0], how)
    with caplog.at_level(logging.WARNING, logger="rag_eval"):
        scores = run_task(_run_cfg(out, minilm_path, [STS], limits=30, verbosity=1))  # 1: warnings
    warnings = [r.getMessage() for r in caplog.records if "embedding chunk" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith(f"ignoring corrupt embedding chunk {chunks[0]} ("), warnings
    assert warnings[0].endswith("): its texts are encoded again")
    assert scores["StsbSTS"]["test"]["main_score"] == pytest.approx(clean_score, abs=1e-6)
    now = sorted((out / ".cache").rglob("chunk-*.json"))
    assert chunks[0] not in now and not chunks[0].with_suffix(".npy").exists()  # replaced, not kept
    assert len(now) == 2 and all(p.with_suffix(".npy").is_file() for p in now)


@pytest.mark.parametrize("how", ["npy-garbage", "json-garbage", "count-mismatch"])
def test_corrupt_score_cache_chunk_is_dropped_and_logged_once(tmp_path, caplog, how):
    """The cross-encoder's score cache is the embedding cache's storage (one float per pair): a corrupt
    chunk is logged once and removed, the good one is kept, and the next run does not log it again."""
    import numpy as np

    from rag_eval.stages.vector_store import VectorStore

    folder = tmp_path / "rerank_scores"
    cache = VectorStore(folder)
    cache.add(["a", "b"], np.array([[0.5], [0.25]]))
    cache.add(["c"], np.array([[0.125]]))
    bad, good = sorted(folder.glob("chunk-*.json"))
    _corrupt(bad, how)
    with caplog.at_level(logging.WARNING, logger="rag_eval"):
        again = VectorStore(folder)
        third = VectorStore(folder)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and warnings[0].startswith(f"ignoring corrupt embedding chunk {bad} ("), warnings
    assert set(again) == set(third) == {"c"} and float(again["c"][0]) == 0.125
    assert sorted(folder.iterdir()) == [good, good.with_suffix(".npy")]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["truncated", "no-scores"])
def test_corrupt_result_file_is_rerun_and_logged_once(tmp_path, clean_run, minilm_path, caplog, how):
    from mteb import TaskResult

    from rag_eval import run_task

    src, clean_score = clean_run
    out = tmp_path / "out"
    shutil.copytree(src, out)
    path = next(out.glob("*/*/StsbSTS.json"))
    if how == "truncated":
        path.write_bytes(path.read_bytes()[:300])
    else:
        obj = json.loads(path.read_text(encoding="utf-8"))
        path.write_text(json.dumps({**obj, "scores": {}}), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="rag_eval"):
        scores = run_task(_run_cfg(out, minilm_path, [STS], limits=30, overwrite_results=False, verbosity=1))
    warnings = [r.getMessage() for r in caplog.records if str(path) in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith(f"ignoring {'unreadable ' if how == 'truncated' else ''}"
                                                         f"result {path}"), warnings
    assert warnings[0].endswith("the task will run again")
    assert scores.outcomes[0].status == "ok"  # ran again, not "cached"
    assert scores["StsbSTS"]["test"]["main_score"] == pytest.approx(clean_score, abs=1e-6)
    assert TaskResult.from_disk(path).scores["test"][0]["main_score"] == pytest.approx(clean_score, abs=1e-6)


@pytest.mark.slow
def test_corrupt_stage1_predictions_are_recomputed(tmp_path, minilm_path, reranker_path, caplog):
    """A predictions file cut short (mteb writes it in place; a kill can leave half of one): stage 1 runs
    again from cached embeddings and writes it whole; stage 2's finished result stays (nothing finished
    is redone on resume), and the scores equal the first run's."""
    from rag_eval import run_task

    cfg = {"model": [{"model_name_or_path": minilm_path, "name": MINILM_NAME},
                     {"model_name_or_path": reranker_path, "is_cross_encoder": True}],
           "eval": {"tasks": [{**RETRIEVAL, "path": str(RETRIEVAL["path"])}], "limits": 10, "top_k": 5,
                    "corpus_size": 40,  # of the demo's 300 long documents (each query's judged ones among them)
                    "output_folder": str(tmp_path / "out"), "verbosity": 1, "overwrite_results": False}}
    first = run_task(cfg)
    predictions = next((tmp_path / "out" / "stage1").rglob("CmrcRetrieval_predictions.json"))
    predictions.write_bytes(predictions.read_bytes()[:100])
    with caplog.at_level(logging.WARNING, logger="rag_eval"):
        again = run_task(cfg)
    warnings = [r.getMessage() for r in caplog.records if str(predictions) in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith(f"removing unreadable predictions {predictions} ("), warnings
    assert json.loads(predictions.read_text(encoding="utf-8"))  # whole again
    assert [(o.stage, o.status) for o in again.outcomes] == [("stage1", "ok"), ("stage2", "cached")]
    for stage in ("stage1", "stage2"):
        assert again["CmrcRetrieval"][stage]["dev"]["main_score"] == pytest.approx(
            first["CmrcRetrieval"][stage]["dev"]["main_score"], abs=1e-6)


# --------------------------------------------------------------------------- a huge line, a signal inside C code


def _sts_with_a_huge_line(folder: Path, chars: int = 10_000_000) -> Path:
    """13 pairs of the demo STS file, the 5th pair's first sentence replaced by ``chars`` characters of text."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in (DEMO / "sts/stsb-zh-mini/test.jsonl").read_text(encoding="utf-8")
            .splitlines()[:13]]
    rows[4]["sentence1"] = ("a long line of words 一段很长的文字 " * (chars // 24 + 1))[:chars]
    (folder / "test.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                       encoding="utf-8")
    return folder


@pytest.mark.slow
def test_a_10mb_line_is_read_as_a_bounded_prefix(tmp_path, minilm_path):
    """The truncation and vocabulary probes tokenise a bounded prefix of each text, and a text far beyond
    max_seq_length reaches the model as a prefix that still fills it: the 13-pair task ends with a score
    (it ran for more than 10 minutes when every text was tokenised in full)."""
    from rag_eval import run_task

    folder = _sts_with_a_huge_line(tmp_path / "huge")
    scores = run_task({"model": {"model_name_or_path": minilm_path},
                       "eval": {"tasks": [{"name": "Huge", "type": "STS", "path": str(folder)}],
                                "output_folder": str(tmp_path / "out"), "verbosity": 0}})
    assert scores.ok, scores.failed
    assert -1 <= scores["Huge"]["test"]["cosine_spearman"] <= 1


@pytest.mark.subprocess
def test_sigterm_is_answered_while_the_main_thread_is_inside_c_code(tmp_path, minilm_path):
    """A tokenizer busy for tens of seconds on one 10 MB text (Rust, no Python signal handler runs until it
    returns): the CLI's watchdog answers SIGTERM with the run's one line and exit 130 within its grace."""
    script = (
        "import sys\n"
        "from rag_eval import cli_checks, errors\n"
        "cli_checks.install_sigterm()\n"
        "errors.stop_line = lambda name: f'interrupted ({name}): finished (on disk): none; not finished: Huge; '"
        " 'rerun with eval.overwrite_results=false to resume'\n"
        "from transformers import AutoTokenizer\n"
        f"tok = AutoTokenizer.from_pretrained({minilm_path!r})\n"
        "text = 'a long line of words ' * 500_000\n"
        "print('ready', flush=True)\n"
        "tok([text] * 4, verbose=False)\n"
        "print('not interrupted', flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=cli_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline() == "ready\n", proc.stderr.read()[-2000:]
    time.sleep(0.5)  # inside the tokenizer's call by now
    proc.send_signal(signal.SIGTERM)
    try:
        stdout, stderr = proc.communicate(timeout=30)  # unanswered, the call alone runs for a minute or more
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("SIGTERM was not answered while the tokenizer ran")
    assert proc.returncode == 130, stderr[-2000:]
    assert stdout == "" and stderr == ("rag_eval: interrupted (SIGTERM): finished (on disk): none; not finished: "
                                       "Huge; rerun with eval.overwrite_results=false to resume\n")
