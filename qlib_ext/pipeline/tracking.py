"""A local MLflow tracking server for parallel runs (several processes on one sqlite store collide).

:class:`TrackingServer` starts ``mlflow server --backend-store-uri sqlite:///<dir>/mlflow.db
--artifacts-destination <dir>/artifacts --host 127.0.0.1 --port <free port>``, waits until it
answers ``/health``, and stops it (its whole process group) on exit.  On Linux the server is also
tied to the starting process (``PR_SET_PDEATHSIG``), so a runner killed with ``kill -9`` does not
leave it behind; ``<dir>/server.pid`` records its pid, start time and port.  A stale pid file from a
killed runner is acted on only after checking that the pid still names *our* server: an ``mlflow
server`` process whose command line names this store and whose start time is the recorded one.  A pid
reused by any other process is never signalled (the file is removed with a log line).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ..files import process_cmdline, process_start_time, write_json_atomic

log = logging.getLogger("qlib_ext.tracking")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    os.setsid()
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stop_group(pid: int, timeout: float = 5.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class TrackingServer:
    """``with TrackingServer(folder) as uri:`` a running MLflow server on a sqlite store in ``folder``."""

    def __init__(self, folder: str | Path, host: str = "127.0.0.1", port: int | None = None,
                 startup_timeout: float = 180.0, workers: int = 1) -> None:
        self.folder = Path(folder).expanduser().resolve()
        self.host, self.port = host, port
        self.startup_timeout, self.workers = float(startup_timeout), int(workers)
        self.proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://{self.host}:{self.port}"

    def is_our_server(self, pid: int, start: int | None) -> bool:
        """Whether ``pid`` is the ``mlflow server`` of this store started at ``start`` (clock ticks)."""
        cmd = process_cmdline(pid)
        if not cmd or "server" not in cmd or not any(Path(c).name == "mlflow" or c.endswith("mlflow") for c in cmd):
            return False
        if not any(str(self.folder / "mlflow.db") in c for c in cmd):
            return False
        return start is None or process_start_time(pid) == start

    def _stop_stale(self) -> None:
        pidfile = self.folder / "server.pid"
        if not pidfile.is_file():
            return
        try:
            info = json.loads(pidfile.read_text())
            pid, start = int(info["pid"]), info.get("start")
        except (ValueError, KeyError, TypeError):
            try:  # an older runner's "pid port" line: no start time, the command line must still match
                pid, start = int(pidfile.read_text().split()[0]), None
            except (ValueError, IndexError):
                pid, start = 0, None
        if pid > 0 and self.is_our_server(pid, start):
            log.warning("stopping the stale mlflow server %d of %s (left by a killed sweep)", pid, self.folder)
            _stop_group(pid)
        elif pid > 0:
            log.warning("stale %s names process %d, which is not this store's mlflow server: not signalled",
                        pidfile, pid)
        pidfile.unlink(missing_ok=True)

    def start(self) -> str:
        exe = shutil.which("mlflow")
        if exe is None:
            raise FileNotFoundError("the `mlflow` command is not on PATH (pip install mlflow)")
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "artifacts").mkdir(exist_ok=True)
        self._stop_stale()
        self.port = self.port or free_port(self.host)
        cmd = [exe, "server", "--backend-store-uri", f"sqlite:///{self.folder / 'mlflow.db'}",
               "--artifacts-destination", str(self.folder / "artifacts"), "--host", self.host,
               "--port", str(self.port), "--workers", str(self.workers)]
        # no job-execution runner (huey consumers): the sweep needs tracking and artifacts only
        (self.folder / "tmp").mkdir(exist_ok=True)
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "TMPDIR": str(self.folder / "tmp")}
        log = open(self.folder / "server.log", "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     preexec_fn=_die_with_parent, cwd=self.folder, env=env)
        log.close()
        write_json_atomic(self.folder / "server.pid", {"pid": self.proc.pid, "port": self.port,
                                                       "start": process_start_time(self.proc.pid)})
        t0 = time.time()
        while time.time() - t0 < self.startup_timeout:
            if self.proc.poll() is not None:
                tail = (self.folder / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"mlflow server exited with {self.proc.returncode} on start: {tail}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as r:
                    if r.status == 200:
                        return self.uri
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"mlflow server on {self.uri} did not answer /health within {self.startup_timeout:.0f} s "
                           f"(log {self.folder / 'server.log'})")

    def stop(self) -> None:
        if self.proc is not None:
            _stop_group(self.proc.pid)
            self.proc.wait(timeout=30)
            self.proc = None
        (self.folder / "server.pid").unlink(missing_ok=True)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
