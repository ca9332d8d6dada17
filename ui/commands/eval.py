"""`medkg eval ...`: question-answering suites (eval_qa.py) and interactive diagnosis (eval_ddx.py)."""

import typer

from ui.commands import eval_ddx, eval_qa

eval_app = typer.Typer(help="Evaluate medkg on benchmark suites.", no_args_is_help=True)
eval_qa.register(eval_app)
eval_ddx.register(eval_app)


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
