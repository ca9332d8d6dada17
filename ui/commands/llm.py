"""`medkg llm serve` (the embedded llama.cpp server) and `medkg llm chat` (a one-shot smoke check)."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from assistant.llm import OpenAIChatModel

llm_app = typer.Typer(
    name="llm",
    help="The LLM behind medkg: serve the embedded model, or send it one prompt.",
    no_args_is_help=True,
)


def quiet_http_logs() -> None:
    # The HTTP client logs every request at INFO, which interleaves with streamed text.
    for name in ("httpx", "httpx2"):
        logging.getLogger(name).setLevel(logging.WARNING)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the CLI."""
    app.add_typer(llm_app, name="llm")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@llm_app.command("serve")
def serve(
    port: int = typer.Option(0, "--port", "-p", help="Port on 127.0.0.1 (0: pick a free one)."),
    gguf: Path | None = typer.Option(None, "--gguf", help="GGUF model file (default: SmolLM2-135M)."),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads (default: settings)."),
) -> None:
    """Run the embedded llama.cpp server in the foreground until Ctrl-C."""
    from assistant.processes.embedded import embedded_llm_service, llm_base_url
    from assistant.processes.embedded_llm import ModelNotFoundError
    from assistant.processes.supervisor import ServiceError
    from assistant.settings import load_settings

    settings = load_settings()
    llm = settings.llm.model_copy(
        update={
            "gguf_path": gguf or settings.llm.gguf_path,
            "threads": threads or settings.llm.threads,
        }
    )
    settings = settings.model_copy(update={"llm": llm})
    try:
        service = embedded_llm_service(settings, port=port or None)
    except (ServiceError, ModelNotFoundError) as error:
        typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(1) from error

    # SIGTERM stops it as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    try:
        service.start()
    except ServiceError as error:
        typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(1) from error
    url = llm_base_url(service)
    typer.echo(f"embedded LLM ready in {time.monotonic() - started:.1f}s at {url} (model {llm.model})")
    typer.echo("point medkg (or any OpenAI client) at it from another shell:")
    typer.echo(f"  export OPENAI_BASE_URL={url}")
    typer.echo(f"log: {service.log_path}    stop: Ctrl-C")
    try:
        while service.running:
            time.sleep(0.5)
        typer.secho(f"the embedded LLM exited unexpectedly; see {service.log_path}", fg="red", err=True)
        raise typer.Exit(1)
    except KeyboardInterrupt:
        typer.echo("stopping the embedded LLM ...")
    finally:
        service.stop()
    typer.echo("stopped")


@contextlib.contextmanager
def _chat_model(start_embedded: bool) -> Iterator[OpenAIChatModel]:
    """The configured server's client; starts the embedded server if none is configured."""
    from assistant.llm import create_chat_model
    from assistant.processes.embedded import embedded_llm_service, llm_base_url
    from assistant.processes.supervisor import ServiceGroup
    from assistant.settings import load_settings

    quiet_http_logs()
    settings = load_settings()
    with ServiceGroup() as group:
        llm = settings.llm
        if llm.base_url is None:
            if not start_embedded:
                raise typer.BadParameter("no LLM server configured: set OPENAI_BASE_URL or drop --no-start")
            typer.echo("no LLM server configured: starting the embedded one ...", err=True)
            service = group.start(embedded_llm_service(settings))
            llm = llm.model_copy(update={"base_url": llm_base_url(service)})
        with create_chat_model(llm) as model:
            yield model


@llm_app.command("chat")
def chat(
    prompt: str = typer.Argument(..., help="The user message."),
    system: str | None = typer.Option(None, "--system", help="A system message."),
    max_tokens: int = typer.Option(256, "--max-tokens", min=1),
    temperature: float = typer.Option(0.0, "--temperature", min=0.0, max=2.0),
    stream: bool = typer.Option(True, "--stream/--no-stream", help="Print pieces as they arrive."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole response (text, usage) as JSON."),
    start: bool = typer.Option(True, "--start/--no-start", help="Start the embedded LLM if none is set."),
) -> None:
    """Send one prompt to the LLM (the configured server, else a freshly started embedded one)."""
    from assistant.llm import ChatMessage, LLMError

    messages = [ChatMessage(role="system", content=system)] if system else []
    messages.append(ChatMessage(role="user", content=prompt))
    try:
        with _chat_model(start) as model:
            if stream and not as_json:
                with model.open_stream(messages, temperature=temperature, max_tokens=max_tokens) as reply:
                    for piece in reply:
                        sys.stdout.write(piece)
                        sys.stdout.flush()
                sys.stdout.write("\n")
                response = reply.response
            else:
                response = model.chat(messages, temperature=temperature, max_tokens=max_tokens)
                if not as_json:
                    typer.echo(response.text)
            if as_json and response is not None:
                typer.echo(json.dumps(response.model_dump(), indent=2))
            elif response is not None:
                typer.echo(
                    f"[{response.model} | {response.usage.prompt_tokens} prompt + "
                    f"{response.usage.completion_tokens} completion tokens | {response.latency_s:.2f}s]",
                    err=True,
                )
    except LLMError as error:
        typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(1) from error
