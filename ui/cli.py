"""The ``medkg`` command line. Each area registers its commands from ui/commands/<area>.py."""

from __future__ import annotations

import logging
import os

import typer

from ui.commands import agent, doctor, eval, index, kg, llm, serve, vision

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Model loading draws progress bars and notices on the terminal; medkg prints its own lines.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

app = typer.Typer(
    name="medkg",
    help="medkg: knowledge-graph-grounded diagnostic assistant (decision support, not a doctor).",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages.")) -> None:
    # Libraries (faiss, open_clip, sentence-transformers, httpx) log their loading at INFO; a
    # command prints a few human lines of its own, so only warnings from them reach the
    # terminal. The evaluations' progress (eval.*) stays at INFO; --verbose shows everything.
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        logging.getLogger("eval").setLevel(logging.INFO)


for module in (llm, doctor, kg, index, eval, serve, agent, vision):
    module.register(app)
