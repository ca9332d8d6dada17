"""Interfaces: the Gradio app, the HTTP API (FastAPI) and the ``medkg`` CLI.

``create_app`` is imported lazily so that ``medkg --help`` does not pay for FastAPI + Gradio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ui.server import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from ui.server import create_app

        return create_app
    raise AttributeError(f"module 'ui' has no attribute {name!r}")
