"""A local Ray head on 127.0.0.1 for the launcher tests and ``benchmarks/bench_launchers.py`` alike.

``ray start --head --block`` on free ports with its own temp dir, in its own session, stopped by SIGTERM
(Ray drains and stops its processes); any process left in that session is then killed: unlike
``ray stop``, this never touches another Ray on the machine.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

# Ray: every socket on 127.0.0.1, no usage stats, no token auth (the same in `ray start` and the driver)
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
STARTED = "Ray runtime started"


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def start_head(temp: Path, cwd: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str, Path]:
    """``ray start --head --block`` (2 CPUs, no dashboard) with ``temp`` as its temp dir, in its own session:
    (process, address, its log). It is up once the log holds :data:`STARTED`."""
    port, client, dashboard, agent = free_ports(4)
    log = temp / "ray-start.log"
    cmd = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
           f"--port={port}", "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats",
           f"--temp-dir={temp}", "--object-store-memory=300000000", f"--ray-client-server-port={client}",
           f"--dashboard-port={dashboard}", f"--dashboard-agent-listen-port={agent}"]
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, f"127.0.0.1:{port}", log


def started(log: Path) -> bool:
    return STARTED in log.read_text(errors="replace")


def stop_head(proc: subprocess.Popen) -> None:
    """SIGTERM to ``ray start --block``; then whatever is left of its session is killed."""
    proc.terminate()
    try:
        proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while session(proc.pid) and time.monotonic() < deadline:
        time.sleep(1)
    for pid in session(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:  # gone meanwhile
            pass


def session(sid: int) -> list[int]:
    """Processes of session ``sid`` (``ray start --block`` and everything it started)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 3 and int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def mentioning(text: str) -> list[int]:
    """Processes whose command line mentions ``text`` (the cluster's own temp dir)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().decode(errors="replace"):
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return [p for p in found if p != os.getpid()]
