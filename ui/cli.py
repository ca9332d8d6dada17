"""The ``medkg`` command line. Each area registers its commands from ui/commands/<area>.py."""

from __future__ import annotations

import logging
import os

import typer

from ui.commands import agent, doctor, eval, index, kg, llm, serve, vision

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

app = typer.Typer(
    name="medkg",
    help="medkg: knowledge-graph-grounded diagnostic assistant (decision support, not a doctor).",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # One INFO line per HTTP request would interleave with command output.
    for name in ("httpx", "httpx2"):
        logging.getLogger(name).setLevel(logging.WARNING)


for module in (llm, doctor, kg, index, eval, serve, agent, vision):
    module.register(app)
