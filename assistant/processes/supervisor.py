"""Supervision of embedded services: child processes in their own process group.

Each service is started as a separate process (``start_new_session=True``) so that a stop
signal reaches the whole tree, is polled for readiness with a timeout, and is stopped with
SIGTERM then SIGKILL. A failing start raises ``ServiceError`` with the tail of its log.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """A service could not be started, or stopped answering."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def port_accepts(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


class ManagedService:
    """One child process with a readiness check."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        ready: Callable[[], bool],
        *,
        log_path: Path,
        ports: Sequence[int] = (),
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        start_timeout_s: float = 60.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.ready = ready
        self.log_path = log_path
        self.ports = list(ports)
        self.env = env
        self.cwd = cwd
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> ManagedService:
        for port in self.ports:
            if not port_is_free(port):
                raise ServiceError(
                    f"{self.name}: port {port} on 127.0.0.1 is already taken; "
                    "stop the other program or choose another port in the settings"
                )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **(self.env or {})}
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                self.argv,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.cwd,
                start_new_session=True,
            )
        started = time.monotonic()
        deadline = started + self.start_timeout_s
        delay = 0.05
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise ServiceError(
                    f"{self.name} exited with code {code} while starting. "
                    f"Last log lines ({self.log_path}):\n{_tail(self.log_path)}"
                )
            with contextlib.suppress(Exception):
                if self.ready():
                    log.info("%s ready in %.1fs", self.name, time.monotonic() - started)
                    return self
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
        self.stop()
        raise ServiceError(
            f"{self.name} was not ready after {self.start_timeout_s:.0f}s. "
            f"Last log lines ({self.log_path}):\n{_tail(self.log_path)}"
        )

    def stop(self) -> None:
        proc = self.process
        if proc is None:
            return
        self.process = None
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=self.stop_timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def __enter__(self) -> ManagedService:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class ServiceGroup:
    """Starts services in order, stops them in reverse, also on exit and on SIGTERM/Ctrl-C."""

    def __init__(self) -> None:
        self.services: list[ManagedService] = []
        atexit.register(self.stop_all)

    def start(self, service: ManagedService) -> ManagedService:
        try:
            service.start()
        except BaseException:
            self.stop_all()
            raise
        self.services.append(service)
        return service

    def stop_all(self) -> None:
        while self.services:
            self.services.pop().stop()

    def install_signal_handlers(self) -> None:
        def _handler(signum: int, _frame: object) -> None:
            self.stop_all()
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, _handler)
        signal.signal(signal.SIGINT, _handler)

    def __enter__(self) -> ServiceGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()
