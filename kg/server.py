"""The embedded graph server: ArcadeDB with its Neo4j-Bolt plugin, in its own process.

Run as ``python -m kg.server --root DIR --http-port P --bolt-port Q``. It must not share a
process with the Bolt driver (in-process it hangs and crashes on stop), so the assistant's
supervisor starts this module as a child and waits for the ready file it writes.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path


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
    stop = threading.Event()
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
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
