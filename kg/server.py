"""The embedded graph server: ArcadeDB with its Neo4j-Bolt plugin, in its own process.

Run as ``python -m kg.server --root DIR --http-port P --bolt-port Q``. It must not share a
process with the Bolt driver (in-process it hangs and crashes on stop), so the assistant's
supervisor starts this module as a child and waits for the ready file it writes.

It exits when the process that started it is gone (a watchdog on its parent pid, besides the
supervisor's parent-death signal), and before opening the database it removes ArcadeDB lock
files that no live process holds: a crashed server must never make the next start fail with
"Database 'graph' is locked by another process".
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import signal
import sys
import threading
import time
from pathlib import Path

LOCK_FILE = "database.lck"


class DatabaseLockedError(RuntimeError):
    """A live process holds the database lock (another server on the same data dir)."""


def clear_stale_locks(databases: Path) -> list[Path]:
    """Remove the ArcadeDB lock files under ``databases`` that no live process holds.

    ArcadeDB locks ``database.lck`` with a POSIX record lock (Java's FileChannel.tryLock is
    fcntl on Linux), which the kernel releases when its process dies; a lock we can take
    ourselves is therefore stale. One we cannot take belongs to a running server: refused.
    """
    removed = []
    for lock_file in sorted(databases.rglob(LOCK_FILE)) if databases.exists() else []:
        try:
            fd = os.open(lock_file, os.O_RDWR)
        except OSError:
            continue
        try:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                raise DatabaseLockedError(
                    f"{lock_file.parent.name}: the database is open in another live process; "
                    "stop the other medkg (or its `python -m kg.server`) first"
                ) from exc
            lock_file.unlink(missing_ok=True)
            removed.append(lock_file)
        finally:
            os.close(fd)  # also releases our probe lock
    return removed


def watch_parent(stop: threading.Event, *, poll_s: float = 0.5, grace_s: float = 15.0) -> None:
    """Stop (``stop.set()``) when the parent process is gone; hard exit if that hangs."""
    # The supervisor names itself: a parent that died before this line ran is still noticed.
    parent = int(os.environ.get("MEDKG_PARENT_PID") or os.getppid())
    if parent <= 1:  # started by init or detached on purpose: nobody to follow
        return

    def run() -> None:
        while not stop.wait(poll_s):
            if os.getppid() != parent:
                print(f"medkg graph server: parent {parent} is gone; stopping", flush=True)
                stop.set()
                time.sleep(grace_s)
                os._exit(1)

    threading.Thread(target=run, name="medkg-parent-watchdog", daemon=True).start()


def server_argv(
    root: Path, http_port: int, bolt_port: int, password: str, database: str, heap: str, ready_file: Path
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "kg.server",
        "--root",
        str(root),
        "--http-port",
        str(http_port),
        "--bolt-port",
        str(bolt_port),
        "--database",
        database,
        "--heap",
        heap,
        "--ready-file",
        str(ready_file),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="medkg embedded ArcadeDB (Bolt) server")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--bolt-port", type=int, required=True)
    parser.add_argument("--database", default="graph")
    parser.add_argument("--heap", default="1g")
    parser.add_argument("--ready-file", type=Path, required=True)
    args = parser.parse_args(argv)
    # The password travels by environment so it never shows in `ps`.
    password = os.environ.get("MEDKG_GRAPH_SERVER_PASSWORD", "medkg-embedded")

    args.root.mkdir(parents=True, exist_ok=True)
    os.chdir(args.root)  # ArcadeDB writes ./log/ in the working directory
    args.ready_file.unlink(missing_ok=True)
    stop = threading.Event()
    watch_parent(stop)
    try:
        for stale in clear_stale_locks(args.root / "databases"):
            print(f"medkg graph server: removed a stale lock {stale}", flush=True)
    except DatabaseLockedError as exc:
        print(f"medkg graph server: {exc}", file=sys.stderr, flush=True)
        return 3

    from arcadedb_embedded import ArcadeDBServer

    server = ArcadeDBServer(
        str(args.root / "databases"),
        password,
        config={
            "host": "127.0.0.1",
            "http_port": args.http_port,
            "server_plugins": "Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
            "bolt_port": args.bolt_port,
            "bolt_defaultDatabase": args.database,
        },
        jvm_kwargs={"heap_size": args.heap},
    )
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.start()
    try:
        if not (args.root / "databases" / args.database).exists():
            server.create_database(args.database)
        else:
            server.get_database(args.database)
        args.ready_file.write_text(f"{args.bolt_port}\n")
        stop.wait()
    finally:
        args.ready_file.unlink(missing_ok=True)
        with contextlib.suppress(Exception):  # a half-started server still ends the process
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
