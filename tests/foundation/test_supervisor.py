from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import tests.fixtures.servers  # noqa: F401  (import check)
from assistant.processes.supervisor import (
    ManagedService,
    PidRecord,
    RestartPolicy,
    ServiceError,
    ServiceGroup,
    free_port,
    port_accepts,
)
from assistant.settings import Settings


def _python_http(port: int) -> list[str]:
    return [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]


def test_service_starts_and_stops(tmp_path: Path) -> None:
    port = free_port()
    service = ManagedService(
        "http",
        _python_http(port),
        ready=lambda: port_accepts(port),
        log_path=tmp_path / "http.log",
        ports=[port],
    )
    with service:
        assert service.running
        assert port_accepts(port)
        pid = service.process.pid if service.process else None
    assert not service.running
    assert pid is not None
    assert not port_accepts(port)


def test_taken_port_gives_clear_error(tmp_path: Path) -> None:
    port = free_port()
    first = ManagedService(
        "a", _python_http(port), ready=lambda: port_accepts(port), log_path=tmp_path / "a.log", ports=[port]
    )
    with first:
        second = ManagedService(
            "b", _python_http(port), ready=lambda: True, log_path=tmp_path / "b.log", ports=[port]
        )
        with pytest.raises(ServiceError, match="already taken"):
            second.start()


def test_crashing_service_reports_log_tail(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import sys; print('boom: bad config'); sys.exit(3)"]
    service = ManagedService("crasher", argv, ready=lambda: False, log_path=tmp_path / "c.log")
    with pytest.raises(ServiceError, match="boom: bad config"):
        service.start()


def test_not_ready_times_out(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import time; time.sleep(60)"]
    service = ManagedService(
        "sleeper", argv, ready=lambda: False, log_path=tmp_path / "s.log", start_timeout_s=1.0
    )
    with pytest.raises(ServiceError, match="not ready"):
        service.start()
    assert not service.running


def test_settings_layering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "medkg.toml"
    toml.write_text('[llm]\nmodel = "from-toml"\nbase_url = "http://toml:1/v1"\n[agent]\nmax_questions = 5\n')
    monkeypatch.setenv("MEDKG_CONFIG", str(toml))
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("MEDKG_LLM__BASE_URL", raising=False)
    settings = Settings()
    assert settings.llm.model == "from-toml"
    assert settings.agent.stop.max_questions == 5
    assert settings.llm.base_url == "http://toml:1/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env:2/v1")
    monkeypatch.setenv("MEDKG_AGENT__MAX_QUESTIONS", "7")
    monkeypatch.setenv("NEO4J_URI", "neo4j://db:7687")
    settings = Settings()
    assert settings.llm.base_url == "http://env:2/v1"
    assert settings.agent.stop.max_questions == 7
    assert settings.graph.uri == "neo4j://db:7687"
    monkeypatch.setenv("MEDKG_LLM__BASE_URL", "http://medkg:3/v1")
    assert Settings().llm.base_url == "http://medkg:3/v1"


# ---------------------------------------------------------------------- supervision (issue 15)
def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_until(check: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def _sleeper(tag: str) -> list[str]:
    return [sys.executable, "-c", "import time; time.sleep(120)", tag]


@pytest.mark.parametrize("kill_signal", [signal.SIGKILL, signal.SIGTERM])
def test_children_die_with_their_parent(tmp_path: Path, kill_signal: int) -> None:
    """kill -9 of the process holding a ServiceGroup leaves no child behind (parent-death signal)."""
    script = textwrap.dedent(
        f"""
        import sys, threading, time
        from pathlib import Path
        from assistant.processes.supervisor import ManagedService, ServiceGroup
        group = ServiceGroup()
        # Started from a short-lived thread: the child must outlive that thread, not the process.
        def start():
            group.start(ManagedService("s", {_sleeper("pdeath-test")!r}, ready=lambda: True,
                                       log_path=Path({str(tmp_path / "s.log")!r})))
        t = threading.Thread(target=start); t.start(); t.join()
        print(group.services[0].process.pid, flush=True)
        time.sleep(120)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    time.sleep(0.5)
    assert _alive(child), "the child must outlive the thread that started it"
    parent.send_signal(kill_signal)
    parent.wait(timeout=10)
    assert _wait_until(lambda: not _alive(child), 10), f"child {child} outlived its parent"


def test_group_restarts_a_dead_child_on_the_same_port(tmp_path: Path) -> None:
    port = free_port()
    policy = RestartPolicy(initial_delay_s=0.1, max_delay_s=0.4)
    service = ManagedService(
        "http",
        _python_http(port),
        ready=lambda: port_accepts(port),
        log_path=tmp_path / "http.log",
        ports=[port],
        key="http",
        restart=policy,
    )
    hooks: list[int] = []
    with ServiceGroup(poll_s=0.05) as group:
        group.on_restart("http", lambda s: hooks.append(s.restarts))
        group.start(service)
        first = service.process.pid if service.process else 0
        assert group.status()["http"].state == "ok"
        os.kill(first, signal.SIGKILL)
        assert _wait_until(lambda: group.status()["http"].state != "ok", 5)
        assert _wait_until(lambda: group.status()["http"].state == "ok", 15)
        status = group.status()["http"]
        assert status.restarts == 1 and status.last_exit_code == -signal.SIGKILL
        assert status.pid not in (None, first)
        assert port_accepts(port)
        assert hooks == [1]
    assert not service.running and service.state == "stopped"


def test_a_dead_child_reads_restarting_before_its_watcher_polls(tmp_path: Path) -> None:
    service = ManagedService(
        "sleeper", _sleeper("dead-read"), ready=lambda: True, log_path=tmp_path / "d.log", key="d"
    )
    with ServiceGroup(poll_s=60) as group:  # the watcher will not look for a minute
        group.start(service)
        assert service.process is not None
        os.kill(service.process.pid, signal.SIGKILL)
        service.process.wait(timeout=5)
        assert group.status()["d"].state == "restarting"


def test_a_hung_child_is_killed_and_restarted(tmp_path: Path) -> None:
    port = free_port()
    service = ManagedService(
        "http",
        _python_http(port),
        ready=lambda: port_accepts(port),
        log_path=tmp_path / "h.log",
        ports=[port],
        key="h",
        restart=RestartPolicy(initial_delay_s=0.05),
        alive=lambda: port_accepts(port, timeout=0.2) and _http_get_ok(port),
        liveness_every_s=0.2,
        liveness_failures=2,
    )
    with ServiceGroup(poll_s=0.05) as group:
        group.start(service)
        assert service.process is not None
        hung = service.process.pid
        os.kill(hung, signal.SIGSTOP)  # alive, answering nothing
        assert _wait_until(
            lambda: group.status()["h"].restarts == 1 and group.status()["h"].state == "ok", 15
        )
        assert not _alive(hung)
        assert _http_get_ok(port)


def _http_get_ok(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=0.5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_restart_budget_ends_in_failed(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import time; time.sleep(0.3)"]
    policy = RestartPolicy(initial_delay_s=0.05, max_delay_s=0.1, max_restarts=2, window_s=60)
    service = ManagedService(
        "flaky", argv, ready=lambda: True, log_path=tmp_path / "f.log", key="flaky", restart=policy
    )
    with ServiceGroup(poll_s=0.05) as group:
        group.start(service)
        assert _wait_until(lambda: group.status()["flaky"].state == "failed", 15)
        status = group.status()["flaky"]
        assert status.restarts == 2 and status.last_exit_code == 0
        assert "not restarted again" in (status.last_error or "")


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = RestartPolicy(initial_delay_s=0.5, max_delay_s=8.0)
    assert [policy.delay(n) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def _orphan(tag: str) -> int:
    """A process whose parent is gone (re-parented to init), like a crashed medkg's child."""
    code = (
        f"import subprocess; print(subprocess.Popen({_sleeper(tag)!r}, start_new_session=True, "
        "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).pid)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout)


def test_start_kills_a_child_left_by_a_dead_medkg(tmp_path: Path) -> None:
    tag = f"stale-{tmp_path}"
    orphan = _orphan(tag)
    pid_file = tmp_path / "run" / "s.pid"
    pid_file.parent.mkdir()
    pid_file.write_text(f"{orphan} 0 999999 0\n")  # a record from a medkg that is gone
    assert _wait_until(lambda: tag in Path(f"/proc/{orphan}/cmdline").read_text(), 5)
    service = ManagedService(
        "s",
        _sleeper(tag),
        ready=lambda: True,
        log_path=tmp_path / "s.log",
        pid_file=pid_file,
        owner_marker=[tag],
    )
    with service:
        assert not _alive(orphan)
        assert service.process is not None
        record = PidRecord.read(pid_file)
        assert record is not None and record.pid == service.process.pid and record.parent == os.getpid()
    assert not pid_file.exists()


def test_start_refuses_a_data_dir_a_live_medkg_uses(tmp_path: Path) -> None:
    tag = f"busy-{tmp_path}"
    # A live "other medkg" holding its child (its parent is alive and a Python process).
    code = (
        f"import subprocess, time; p = subprocess.Popen({_sleeper(tag)!r}, stdout=subprocess.DEVNULL); "
        "print(p.pid, flush=True); time.sleep(60)"
    )
    other = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None
        child = int(other.stdout.readline())
        service = ManagedService(
            "s", _sleeper(tag), ready=lambda: True, log_path=tmp_path / "s.log", owner_marker=[tag]
        )
        # Right after exec a process's /proc cmdline can read empty for a moment.
        assert _wait_until(lambda: tag in Path(f"/proc/{child}/cmdline").read_text(), 5)
        with pytest.raises(ServiceError, match="another running medkg"):
            service.start()
        assert _alive(child)
    finally:
        other.kill()
        other.wait()
        subprocess.run(["pkill", "-f", tag], check=False)


def test_graph_launcher_clears_only_stale_locks(tmp_path: Path) -> None:
    from kg.server import DatabaseLockedError, clear_stale_locks

    stale = tmp_path / "databases" / "databases" / "graph" / "database.lck"
    stale.parent.mkdir(parents=True)
    stale.touch()
    assert clear_stale_locks(tmp_path / "databases") == [stale]
    assert not stale.exists()
    # A lock held by a live process (fcntl, as Java's FileChannel.tryLock takes it) is refused.
    stale.touch()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import fcntl, os, time; fd = os.open({str(stale)!r}, os.O_RDWR); "
            "fcntl.lockf(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(DatabaseLockedError):
            clear_stale_locks(tmp_path / "databases")
        assert stale.exists()
    finally:
        holder.kill()
        holder.wait()


def test_launchers_exit_when_their_parent_is_gone() -> None:
    """The watchdog in kg/server.py (the LLM launcher has the same one) ends an orphan."""
    child_code = (
        "import threading, time; from kg.server import watch_parent; s = threading.Event(); "
        "watch_parent(s, poll_s=0.05, grace_s=0.2); s.wait(); time.sleep(30)"
    )
    code = (
        "import os, subprocess, sys; "
        f"print(subprocess.Popen([sys.executable, '-c', {child_code!r}], stdout=subprocess.DEVNULL, "
        "env={**os.environ, 'MEDKG_PARENT_PID': str(os.getpid())}).pid)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    child = int(out.stdout)
    assert _wait_until(lambda: not _alive(child), 10), "the launcher outlived its parent"
