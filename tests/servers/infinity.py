"""infinity-emb serving the local MiniLM bi-encoder and the ms-marco cross-encoder, for the API tests.

The server cannot share rag_eval's environment (it needs transformers 4 / sentence-transformers 3),
so :func:`venv` builds its own venv once from ``infinity.txt`` into ``$RAG_EVAL_SERVERS``; a stamp
with the requirements' hash marks a complete install. :class:`InfinityServer` starts it, waits for
``/health``, and stops it (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.locks import file_lock

REQUIREMENTS = Path(__file__).with_name("infinity.txt")
SERVERS = Path(os.environ.get("RAG_EVAL_SERVERS", Path.home() / ".cache" / "rag_eval-test-servers"))
EMBEDDER, RERANKER = "all-MiniLM-L6-v2", "ms-marco-MiniLM-L-12-v2"
API_KEY = "rag-eval-test-key"


def venv() -> Path:
    """The server's venv (built on first use: a few minutes with pip's cache, more without)."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    folder = SERVERS / f"infinity-{digest}"
    with file_lock(SERVERS / f".infinity-{digest}.lock"):  # one pytest worker installs, the other reuses it
        return _install(folder, digest)


def _install(folder: Path, digest: str) -> Path:
    stamp = folder / ".installed"
    if stamp.is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    base = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([base, "-m", "venv", str(folder)], check=True, capture_output=True, text=True)
    proc = subprocess.run([str(folder / "bin" / "pip"), "install", "-q", "-r", str(REQUIREMENTS)],
                          capture_output=True, text=True, timeout=3000)
    if proc.returncode != 0:
        raise RuntimeError(f"installing the infinity server failed:\n{proc.stderr[-3000:]}")
    stamp.write_text(digest)
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class InfinityServer:
    """``infinity_emb v2`` on 127.0.0.1 serving ``models`` ({served name: folder}), with an API key."""

    def __init__(self, models: dict[str, str], workdir: Path, api_key: str | None = API_KEY):
        self.models, self.workdir, self.api_key = models, Path(workdir), api_key
        self.port = free_port()
        self.api_base = f"http://127.0.0.1:{self.port}/v1"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 600) -> InfinityServer:
        args = [str(venv() / "bin" / "infinity_emb"), "v2"]
        for name, folder in self.models.items():
            args += ["--model-id", folder, "--served-model-name", name]
        args += ["--host", "127.0.0.1", "--port", str(self.port), "--url-prefix", "/v1", "--device", "cpu",
                 "--engine", "torch", "--no-compile", "--no-bettertransformer", "--no-vector-disk-cache",
                 "--no-model-warmup", "--log-level", "warning"]
        if self.api_key:
            args += ["--api-key", self.api_key]
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "DO_NOT_TRACK": "1", "INFINITY_ANONYMOUS_USAGE_STATS": "0",
               "INFINITY_HOME": str(self.workdir / "home"), "TOKENIZERS_PARALLELISM": "false"}
        env.pop("PYTHONPATH", None)
        self.log = (self.workdir / "server.log").open("w")
        self.proc = subprocess.Popen(args, cwd=self.workdir, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"infinity exited with {self.proc.returncode}: {self.tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(1)
        self.stop()
        raise RuntimeError(f"infinity did not become ready within {timeout:.0f} s: {self.tail()}")

    def tail(self, n: int = 3000) -> str:
        path = self.workdir / "server.log"
        return path.read_text(errors="replace")[-n:] if path.is_file() else ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.log.close()
