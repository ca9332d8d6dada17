"""Supervision of embedded services: child processes that die with medkg and come back on their own.

Each service runs as a separate process in its own session (``start_new_session=True``) so that
a stop signal reaches the whole tree; it is polled for readiness with a timeout and stopped with
SIGTERM then SIGKILL. A failing start raises ``ServiceError`` with the tail of its log.

What survives what:

- **medkg killed (even ``kill -9``)**: every child is started with ``PR_SET_PDEATHSIG=SIGKILL``,
  so the kernel kills it with its parent; the launchers (kg/server.py, embedded_llm.py) also
  watch their parent and exit when it is gone. No orphan keeps the ArcadeDB lock or 800 MB.
- **a child left by a crashed run anyway** (another kernel, an old medkg): its pid file under
  ``<data dir>/run/`` and a scan of /proc find it; a child of ours whose medkg is dead is killed
  before the new one starts. One whose medkg still runs is refused with a clear error.
- **a child dying while medkg runs**: ``ServiceGroup`` watches each one from its own thread and
  restarts it on the same ports with exponential backoff (0.5 s doubling to 8 s) and a budget
  (5 restarts per 5 minutes, then ``failed``). ``ServiceGroup.status()`` says where each stands.
- **a child hanging** (alive, not answering): with a liveness check, three missed checks
  10 s apart and it is killed, then restarted like a dead one.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import ctypes
import logging
import os
import queue
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

log = logging.getLogger(__name__)

ServiceState = Literal["starting", "ok", "restarting", "failed", "stopped"]


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


# ---------------------------------------------------------------------- dying with the parent
_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    # Resolved once in the parent: after fork only the call itself runs (no dlopen in the child).
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not Linux: the launchers' parent watchdog remains
        return None


_PRCTL = _load_prctl()


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when the thread that forked it ends."""
    if _PRCTL is None:
        return False
    return _PRCTL(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def _die_with(parent_pid: int) -> Callable[[], None]:
    def preexec() -> None:  # runs in the child between fork and exec: no locks, no logging
        set_parent_death_signal(signal.SIGKILL)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


class _Spawner:
    """Forks every child from one daemon thread that lives as long as the process.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the process: a child
    forked from a request thread or a watcher thread would be killed when that thread finishes.
    A daemon thread is never joined at interpreter exit, so children are still stopped gracefully
    by ``stop_all`` (atexit) and killed by the kernel only when the process itself is gone.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        def spawn() -> subprocess.Popen[bytes]:
            return subprocess.Popen(list(argv), preexec_fn=_die_with(os.getpid()), **kwargs)

        with self._guard:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="medkg-spawner", daemon=True)
                self._thread.start()
        future: concurrent.futures.Future[subprocess.Popen[bytes]] = concurrent.futures.Future()
        self._jobs.put((spawn, future))
        return future.result()

    def _run(self) -> None:
        while True:
            job, future = self._jobs.get()
            try:
                future.set_result(job())
            except BaseException as exc:  # handed to the caller, never kills the spawner
                future.set_exception(exc)


_SPAWNER = _Spawner()


# ---------------------------------------------------------------------- stale children
def _proc_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (tells a reused pid from the original)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _proc_cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _proc_ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _is_ours(pid: int, marker: Sequence[str]) -> bool:
    cmdline = _proc_cmdline(pid)
    return bool(cmdline) and all(part in cmdline for part in marker)


def _matching_pids(marker: Sequence[str]) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid() and _is_ours(int(entry.name), marker):
            pids.append(int(entry.name))
    return pids


def _kill_tree(pid: int, grace_s: float = 5.0) -> None:
    """SIGTERM the child's process group (it leads its own session), then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if _proc_start_time(pid) is None or _proc_state(pid) == "Z":
                return
            time.sleep(0.1)


def _exiting(pid: int) -> bool:
    """The kernel is tearing the process down (PF_EXITING): a killed JVM can take a second to
    release its memory, and its sockets stay open meanwhile."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return True
    return fields[0] in ("Z", "X") or bool(int(fields[6]) & 0x4)


def _proc_state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


@dataclass(frozen=True)
class PidRecord:
    """What ``<data dir>/run/<name>.pid`` holds: the child and the medkg that started it."""

    pid: int
    start: int
    parent: int
    parent_start: int

    def line(self) -> str:
        return f"{self.pid} {self.start} {self.parent} {self.parent_start}\n"

    @staticmethod
    def read(path: Path) -> PidRecord | None:
        try:
            fields = [int(x) for x in path.read_text().split()]
            return PidRecord(*fields[:4])
        except (OSError, ValueError, TypeError):
            return None

    def parent_alive(self) -> bool:
        return self.parent_start == _proc_start_time(self.parent)

    def child_alive(self) -> bool:
        return self.start == _proc_start_time(self.pid)


def clear_stale(pid_file: Path | None, marker: Sequence[str], name: str) -> list[int]:
    """Kill children of ours left by a medkg that is gone; refuse if their medkg still runs.

    ``marker``: argv items that all appear in the command line of such a child and of no one
    else's (the module and the data dir). Returns the pids killed.
    """
    record = PidRecord.read(pid_file) if pid_file else None
    candidates: set[int] = set(_matching_pids(marker)) if marker else set()
    if record is not None and record.child_alive() and (not marker or _is_ours(record.pid, marker)):
        candidates.add(record.pid)
    killed = []
    for pid in sorted(candidates):
        parent = _proc_ppid(pid)
        recorded = record if record is not None and record.pid == pid else None
        if recorded is not None:
            orphan = not recorded.parent_alive()
        else:  # no record: an orphan is re-parented (to init or a subreaper), never to a medkg
            orphan = parent is None or parent == 1 or not _is_python(parent)
        if parent == os.getpid():
            continue  # our own running child (a second start() of the same service)
        if not orphan:
            raise ServiceError(
                f"{name}: process {pid} of another running medkg (pid {parent}) uses this data dir; "
                "stop it first, or give this one another data dir (MEDKG_DATA_DIR)"
            )
        log.warning("%s: killing process %s left by a medkg that is gone", name, pid)
        _kill_tree(pid)
        killed.append(pid)
    if pid_file is not None:
        pid_file.unlink(missing_ok=True)
    return killed


def _is_python(pid: int) -> bool:
    cmdline = _proc_cmdline(pid)
    return bool(cmdline) and ("python" in Path(cmdline[0]).name or "medkg" in " ".join(cmdline[:3]))


# ---------------------------------------------------------------------- one service
@dataclass(frozen=True)
class RestartPolicy:
    initial_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_restarts: int = 5  # within window_s; one more crash and the service is "failed"
    window_s: float = 300.0
    stable_after_s: float = 30.0  # up this long: the next crash starts the backoff afresh

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay_s, self.initial_delay_s * 2**attempt))


@dataclass(frozen=True)
class ServiceStatus:
    key: str
    name: str
    state: ServiceState
    pid: int | None
    restarts: int
    last_exit_code: int | None
    since: float  # time.time() of the last state change
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
        key: str | None = None,
        pid_file: Path | None = None,
        owner_marker: Sequence[str] = (),
        prepare: Callable[[], None] | None = None,
        restart: RestartPolicy | None = None,
        alive: Callable[[], bool] | None = None,
        liveness_every_s: float = 10.0,
        liveness_failures: int = 3,
    ) -> None:
        self.name = name
        self.key = key or name
        self.argv = list(argv)
        self.ready = ready
        self.log_path = log_path
        self.ports = list(ports)
        self.env = env
        self.cwd = cwd
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.pid_file = pid_file
        self.owner_marker = list(owner_marker)
        self.prepare = prepare  # before each start (e.g. remove a ready file a killed child left)
        self.restart_policy = restart or RestartPolicy()
        # Liveness (supervised only): a child that is up but stops answering this check
        # ``liveness_failures`` times in a row, ``liveness_every_s`` apart, is killed and restarted.
        self.alive = alive
        self.liveness_every_s = liveness_every_s
        self.liveness_failures = liveness_failures
        self.process: subprocess.Popen[bytes] | None = None
        self.supervised = False  # set by a supervising ServiceGroup: a death means a restart
        self.state: ServiceState = "stopped"
        self.restarts = 0
        self.last_exit_code: int | None = None
        self.last_error: str | None = None
        self.since = time.time()
        self._started_at = 0.0
        self._lock = threading.RLock()  # start/stop/restart of this service, one at a time
        self._abort = threading.Event()  # set by stop(): a restart waiting for readiness gives up

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def status(self) -> ServiceStatus:
        proc = self.process
        state = self.state
        if (
            state == "ok"
            and self.supervised
            and proc is not None
            and (proc.poll() is not None or _exiting(proc.pid))
        ):
            state = "restarting"  # dying or dead; its watcher notices within a poll and restarts it
        return ServiceStatus(
            key=self.key,
            name=self.name,
            state=state,
            pid=proc.pid if proc is not None and proc.poll() is None else None,
            restarts=self.restarts,
            last_exit_code=self.last_exit_code,
            since=self.since,
            last_error=self.last_error,
        )

    def _set_state(self, state: ServiceState) -> None:
        self.state = state
        self.since = time.time()

    def start(self) -> ManagedService:
        with self._lock:
            self._abort.clear()
            self._set_state("starting")
            try:
                clear_stale(self.pid_file, self.owner_marker, self.name)
                self._spawn_and_wait()
            except BaseException as exc:
                self.last_error = str(exc)
                self._set_state("failed")
                raise
            self._set_state("ok")
            return self

    def _spawn_and_wait(self) -> None:
        for port in self.ports:
            if not self._wait_port_free(port):
                raise ServiceError(
                    f"{self.name}: port {port} on 127.0.0.1 is already taken; "
                    "stop the other program or choose another port in the settings"
                )
        if self.prepare is not None:
            self.prepare()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # The launchers' parent watchdogs follow this pid (kg/server.py, embedded_llm.py).
        env = {**os.environ, **(self.env or {}), "MEDKG_PARENT_PID": str(os.getpid())}
        with open(self.log_path, "ab") as log_file:
            self.process = _SPAWNER.popen(
                self.argv,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.cwd,
                start_new_session=True,
            )
        self._write_pid_file(self.process.pid)
        started = self._started_at = time.monotonic()
        deadline = started + self.start_timeout_s
        delay = 0.05
        while time.monotonic() < deadline and not self._abort.is_set():
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                self.last_exit_code = code
                raise ServiceError(
                    f"{self.name} exited with code {code} while starting. "
                    f"Last log lines ({self.log_path}):\n{_tail(self.log_path)}"
                )
            with contextlib.suppress(Exception):
                if self.ready():
                    log.info("%s ready in %.1fs", self.name, time.monotonic() - started)
                    return
            self._abort.wait(delay)
            delay = min(delay * 1.5, 0.5)
        aborted = self._abort.is_set()
        self._terminate()
        if aborted:
            raise ServiceError(f"{self.name}: start abandoned (the service is being stopped)")
        raise ServiceError(
            f"{self.name} was not ready after {self.start_timeout_s:.0f}s. "
            f"Last log lines ({self.log_path}):\n{_tail(self.log_path)}"
        )

    def _wait_port_free(self, port: int, wait_s: float = 5.0) -> bool:
        # A killed child's socket can take a moment to be released; a restart reuses the port.
        deadline = time.monotonic() + (wait_s if self.restarts else 0.0)
        while True:
            if port_is_free(port):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)

    def _write_pid_file(self, pid: int) -> None:
        if self.pid_file is None:
            return
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        record = PidRecord(pid, _proc_start_time(pid) or 0, os.getpid(), _proc_start_time(os.getpid()) or 0)
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(record.line())
        tmp.replace(self.pid_file)

    def exited(self) -> int | None:
        """The exit code when the child ended on its own while it should run, else None."""
        proc = self.process
        if proc is None or self.state not in ("ok",):
            return None
        return proc.poll()

    def restart(self) -> None:
        """Start the child again on the same ports (after it died)."""
        with self._lock:
            if self._abort.is_set():
                raise ServiceError(f"{self.name}: stopped, not restarted")
            self._terminate()
            self.restarts += 1
            self._spawn_and_wait()
            self.last_error = None
            self._set_state("ok")

    def uptime_s(self) -> float:
        return time.monotonic() - self._started_at if self._started_at else 0.0

    def kill(self) -> None:
        """SIGKILL the child's process group (a hung child); its watcher restarts it."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def request_stop(self) -> None:
        """SIGTERM the child's process group without waiting (``stop`` waits and escalates)."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)

    def stop(self) -> None:
        self._abort.set()
        with self._lock:
            self._terminate()
            self._set_state("stopped")

    def _terminate(self) -> None:
        proc = self.process
        if proc is None:
            return
        self.process = None
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)
        if proc.poll() is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # grandchildren it may have left behind
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


# ---------------------------------------------------------------------- the group
RestartHook = Callable[[ManagedService], None]


class ServiceGroup:
    """Starts services in order, stops them in reverse, also on exit and on SIGTERM/Ctrl-C;
    while they run, restarts any that dies (``supervise=False``: start and stop only)."""

    def __init__(self, *, supervise: bool = True, poll_s: float = 0.25) -> None:
        self.services: list[ManagedService] = []
        self.supervise = supervise
        self.poll_s = poll_s
        self._stopping = threading.Event()
        self._watchers: list[threading.Thread] = []
        self._hooks: dict[str, list[RestartHook]] = {}
        atexit.register(self.stop_all)

    def start(self, service: ManagedService) -> ManagedService:
        try:
            service.start()
        except BaseException:
            self.stop_all()
            raise
        self.services.append(service)
        if self.supervise:
            service.supervised = True
            self._stopping.clear()
            watcher = threading.Thread(
                target=self._watch, args=(service,), name=f"medkg-watch-{service.key}", daemon=True
            )
            self._watchers.append(watcher)
            watcher.start()
        return service

    def on_restart(self, key: str, hook: RestartHook) -> None:
        """Call ``hook(service)`` each time the service ``key`` is back after a restart."""
        self._hooks.setdefault(key, []).append(hook)

    def get(self, key: str) -> ManagedService | None:
        return next((s for s in self.services if s.key == key), None)

    def status(self) -> dict[str, ServiceStatus]:
        return {s.key: s.status() for s in self.services}

    def _hung(self, service: ManagedService, misses: list[float]) -> bool:
        """True once the child has failed its liveness check often enough: it is then killed."""
        now = time.monotonic()
        if service.alive is None or service.state != "ok" or now - misses[0] < service.liveness_every_s:
            return False
        misses[0] = now
        try:
            answered = service.alive()
        except Exception:
            answered = False
        misses[1] = 0 if answered else misses[1] + 1
        if misses[1] < service.liveness_failures:
            return False
        misses[1] = 0
        service.last_error = f"did not answer {service.liveness_failures} liveness checks; killed"
        log.error("%s %s", service.name, service.last_error)
        service.kill()
        return True

    def _watch(self, service: ManagedService) -> None:
        policy = service.restart_policy
        crashes: deque[float] = deque()
        attempt = 0
        liveness = [time.monotonic(), 0.0]  # last check, consecutive misses
        while not self._stopping.wait(self.poll_s):
            code = service.exited()
            if code is None:
                self._hung(service, liveness)
                continue
            service.last_exit_code = code
            if service.uptime_s() >= policy.stable_after_s:
                attempt = 0
            log.warning("%s exited with code %s; restarting", service.name, code)
            service._set_state("restarting")
            while not self._stopping.is_set():
                now = time.monotonic()
                crashes.append(now)
                while crashes and now - crashes[0] > policy.window_s:
                    crashes.popleft()
                if len(crashes) > policy.max_restarts:
                    service.last_error = (
                        f"{len(crashes)} failures within {policy.window_s:.0f}s; not restarted again"
                    )
                    log.error("%s: %s", service.name, service.last_error)
                    service._set_state("failed")
                    return
                if self._stopping.wait(policy.delay(attempt)):
                    return
                attempt += 1
                try:
                    service.restart()
                except ServiceError as exc:
                    service.last_error = str(exc)
                    log.warning("%s: restart failed: %s", service.name, exc)
                    continue
                log.info("%s is back after %d restart(s)", service.name, service.restarts)
                for hook in self._hooks.get(service.key, []):
                    try:
                        hook(service)
                    except Exception:  # a hook must not stop the watching
                        log.warning("restart hook of %s failed", service.name, exc_info=True)
                break

    def stop_all(self) -> None:
        self._stopping.set()
        # Every child gets SIGTERM at once: stopping takes the slowest child's time, not the sum.
        for service in self.services:
            service.request_stop()
        while self.services:
            self.services.pop().stop()
        current = threading.current_thread()
        for watcher in self._watchers:
            if watcher is not current:
                watcher.join(timeout=2)
        self._watchers.clear()

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
