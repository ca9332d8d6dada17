"""A real ``medkg serve`` as a subprocess on a temporary data dir, for fault injection.

Shared by the reliability tests and bench/reliability.py: start it, find its children (the
embedded graph and LLM) by pid, kill them or it with SIGKILL, and watch /healthz.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from assistant.processes.supervisor import free_port

# Small and quiet: no vision model, a tiny retrieval corpus (its background build stays short),
# no rate limits (the concurrency probe sends 60+ requests from one address).
SERVE_ENV = {
    "MEDKG_VISION__MODEL": "",
    "MEDKG_RETRIEVAL__CORPUS_LIMIT": "20",
    "MEDKG_SERVER__RATE_LIMITS__ENABLED": "false",
    "MEDKG_LLM__START_TIMEOUT_S": "120",
    "MEDKG_GRAPH__START_TIMEOUT_S": "180",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def children_of(pid: int) -> list[int]:
    """Live processes whose parent is ``pid`` (the embedded servers of a medkg serve)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def processes_with(marker: str) -> list[int]:
    """Live processes whose command line holds ``marker`` as one argument (e.g. the data dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            args = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any(marker in arg for arg in args) and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def wait_until(check: Callable[[], bool], timeout_s: float, every_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every_s)
    return check()


class ServedMedkg:
    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        start_timeout_s: float = 600,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.extra_env = env or {}
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.start_timeout_s = start_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-serve.log"
        self.client = httpx.Client(base_url=self.url, timeout=180)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> float:
        """Start and wait until /healthz answers ok; the seconds it took."""
        env = {**os.environ, **SERVE_ENV, **self.extra_env, "MEDKG_DATA_DIR": str(self.data_dir)}
        env.pop("NEO4J_URI", None)
        env.pop("OPENAI_BASE_URL", None)
        medkg = Path(sys.executable).parent / "medkg"
        started = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(medkg), "serve", "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        healthy = lambda: self.health_status() == "ok" or not self.running  # noqa: E731
        if not wait_until(healthy, self.start_timeout_s, 0.5):
            raise RuntimeError(f"medkg serve not healthy in {self.start_timeout_s}s:\n{self.log_tail()}")
        if not self.running:
            raise RuntimeError(f"medkg serve exited with {self.process.returncode}:\n{self.log_tail()}")
        return time.monotonic() - started

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def health(self) -> dict[str, Any] | None:
        try:
            body: dict[str, Any] = self.client.get("/healthz", timeout=10).json()
            return body
        except (httpx.HTTPError, ValueError):
            return None

    def health_status(self) -> str | None:
        body = self.health()
        return None if body is None else str(body.get("status"))

    def child_pid(self, key: str) -> int:
        """The pid of the embedded 'graph' or 'llm' server, from its pid file."""
        return int((self.data_dir / "run" / f"{key}.pid").read_text().split()[0])

    def kill9(self) -> list[int]:
        """SIGKILL medkg serve itself; the children it had."""
        children = children_of(self.pid)
        os.kill(self.pid, signal.SIGKILL)
        assert self.process is not None
        self.process.wait(timeout=10)
        return children

    def stop(self) -> None:
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.client.close()
        # Nothing of ours may outlive the test: any process naming the data dir is a leak.
        for pid in processes_with(str(self.data_dir)):
            os.kill(pid, signal.SIGKILL)

    # ------------------------------------------------------------------ the API
    def open(self, message: str) -> httpx.Response:
        return self.client.post("/v1/consultations", json={"message": message})

    def say(self, session_id: str, text: str) -> httpx.Response:
        return self.client.post(f"/v1/consultations/{session_id}/messages", json={"text": text})

    def consultation(self, session_id: str) -> dict[str, Any]:
        response = self.client.get(f"/v1/consultations/{session_id}")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body
