"""`medkg serve`: start what is missing and serve the UI and the API on one port."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from typing import Annotated

import typer

log = logging.getLogger(__name__)


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind now so that a taken port is a clear message before anything slow starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise typer.BadParameter(
            f"cannot listen on {host}:{port} ({exc.strerror}). Another program (perhaps another "
            "medkg serve) uses it: stop it, or choose another port with --port or "
            "MEDKG_SERVER__PORT.",
            param_hint="--port",
        ) from exc
    sock.set_inheritable(True)
    return sock


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings, 7860).")] = None,
) -> None:
    """Start the embedded services the settings leave unconfigured, then serve the UI at / and
    the API at /v1 (OpenAPI at /docs). Ctrl-C stops everything."""
    import uvicorn

    from assistant.app import SERVE, open_app
    from assistant.processes.supervisor import ServiceError, ServiceGroup
    from assistant.settings import load_settings
    from ui.server import create_app

    settings = load_settings()
    server_settings = settings.server.model_copy(
        update={"host": host or settings.server.host, "port": port or settings.server.port}
    )
    settings = settings.model_copy(update={"server": server_settings})
    sock = bind_socket(server_settings.host, server_settings.port)

    group = ServiceGroup()
    # Until uvicorn takes over SIGINT/SIGTERM, a signal stops the children and exits.
    group.install_signal_handlers()
    typer.echo("medkg: starting (first run: the knowledge graph loads once, about a minute)")
    code = 0
    try:
        with open_app(settings, SERVE, echo=typer.echo, group=group) as assembled:
            app = create_app(assembled.settings, assembled=assembled)
            # A short graceful shutdown: Ctrl-C must stop everything within seconds.
            config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=1)
            url = f"http://{server_settings.host}:{server_settings.port}"
            typer.echo(f"medkg is ready: UI {url}/  API {url}/v1  docs {url}/docs  (Ctrl-C stops)")
            # From here a stop signal only unwinds: the clients (graph driver, sessions) close
            # first, then the children stop. A child with open client connections takes its
            # whole stop timeout to go.
            _exit_on_stop_signals()
            uvicorn.Server(config).run(sockets=[sock])
    except ServiceError as exc:
        typer.echo(f"error: {exc}", err=True)
        code = 1
    except SystemExit as exc:  # Ctrl-C / SIGTERM: the group's handler stopped the children
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sock.close()
        group.stop_all()
        typer.echo("medkg stopped")
    # Everything is stopped and closed; skip the interpreter's final garbage collection of
    # the loaded models (seconds on a small machine) so that Ctrl-C returns at once.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _exit_on_stop_signals() -> None:
    def _raise(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGINT, _raise)
    signal.signal(signal.SIGTERM, _raise)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
