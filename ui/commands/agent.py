"""`medkg chat`: a diagnostic consultation in the terminal (decision support, not a doctor)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

HELP_TEXT = (
    "Describe your symptoms. Answer questions with yes / no / don't know (or a value). "
    "Commands: /state (findings and differential), /export FILE, /quit."
)


def _print_turn(result: Any) -> None:
    typer.echo("")
    typer.echo(result.message)
    if result.follow_up is not None and result.follow_up.choices[:3] != ["Yes", "No", "Don't know"]:
        typer.echo("choices: " + ", ".join(result.follow_up.choices[:20]))
    typer.echo(f"[session {result.session_id} · {result.status} · {result.questions_asked} questions]")


def _print_state(consultation: Any, session_id: str) -> None:
    last = consultation.state(session_id).last
    if last is None:
        return
    names = consultation.agent.lexicon
    for o in last.findings:
        status = {True: "yes", False: "no", None: "don't know"}[o.present]
        value = f" = {o.value}" if o.value else ""
        typer.echo(f"  finding: {names.name(o.finding_id)}{value}: {status} ({o.source}, {o.confidence:.2f})")
    for d in last.differential[:5]:
        typer.echo(f"  {d.probability:6.1%}  {d.name}")


def chat(
    session: str | None = typer.Option(None, "--session", help="Resume this session id."),
    age: int | None = typer.Option(None, "--age", min=0, max=130, help="Patient age in years."),
    sex: str | None = typer.Option(None, "--sex", help="Patient sex: M or F."),
    message: str | None = typer.Option(None, "--message", "-m", help="First message (else asked)."),
    no_llm: bool = typer.Option(False, "--no-llm", help="Graph question texts and template answers only."),
) -> None:
    """Chat with the diagnostic assistant on the configured or embedded servers."""
    from assistant.app import Needs, open_app
    from assistant.contracts import SessionNotFoundError
    from assistant.outages import DependencyUnavailableError
    from assistant.settings import load_settings

    def echo(text: str) -> None:
        typer.echo(text, err=True)

    settings = load_settings()
    if no_llm:
        agent = settings.agent.model_copy(
            update={"llm_phrasing": False, "llm_extraction": False, "llm_summary": False}
        )
        settings = settings.model_copy(update={"agent": agent})
    with open_app(settings, Needs(retriever="background", handle_signals=True), echo=echo) as assembled:
        consultation = assembled.require_consultation()
        typer.echo(HELP_TEXT)
        if session:
            try:
                state = consultation.state(session)
            except SessionNotFoundError:
                typer.echo(f"error: no session {session!r} in {assembled.settings.sessions_path}", err=True)
                raise typer.Exit(code=1) from None
            for entry in state.transcript[-4:]:
                typer.echo(f"{entry.role}: {entry.text}")
            result = state.last
            session_id = session
            if result is not None and result.follow_up is not None:
                typer.echo(f"\nassistant (waiting for your answer): {result.follow_up.text}")
        else:
            first = message if message is not None else _read("you> ")
            if first is None:
                return
            try:
                result = consultation.start(first, age=age, sex=sex)
            except ValueError as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(code=2) from None
            session_id = result.session_id
            _print_turn(result)
        while True:
            line = _read("you> ")
            if line is None or line.strip() in ("/quit", "/exit"):
                typer.echo(f"session saved: resume with `medkg chat --session {session_id}`")
                return
            if line.strip() == "/state":
                _print_state(consultation, session_id)
                continue
            if line.strip().startswith("/export"):
                target = Path(line.strip()[len("/export") :].strip() or f"medkg-{session_id}.json")
                target.write_text(json.dumps(consultation.export(session_id), indent=2))
                typer.echo(f"exported to {target}")
                continue
            try:
                if result is not None and result.follow_up is not None:
                    result = consultation.answer(session_id, line)
                else:
                    result = consultation.send(session_id, line)
            except DependencyUnavailableError as exc:  # nothing was recorded
                typer.echo(f"{exc.detail} Send it again in a few seconds.", err=True)
                continue
            _print_turn(result)


def _read(prompt: str) -> str | None:
    try:
        return input(prompt) if sys.stdin.isatty() else _read_pipe(prompt)
    except (EOFError, KeyboardInterrupt):
        return None


def _read_pipe(prompt: str) -> str | None:
    line = sys.stdin.readline()
    if not line:
        return None
    typer.echo(prompt + line.rstrip("\n"))
    return line.rstrip("\n")


def register(app: typer.Typer) -> None:
    """Add `medkg chat`."""
    app.command("chat")(chat)
