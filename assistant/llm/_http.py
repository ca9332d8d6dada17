"""The HTTP library under the ``openai`` client, and its transport errors.

``openai`` 3.x is built on ``httpx2``, earlier versions on ``httpx``; both may be installed.
Clients and timeouts handed to ``openai`` must come from the library it uses (``http``);
errors are caught from both, since a stream can surface either.
"""

from __future__ import annotations

import importlib
from types import ModuleType

try:
    import httpx2 as http
except ImportError:  # openai < 3
    import httpx as http  # type: ignore[no-redef]


def _modules() -> list[ModuleType]:
    found = [http]
    for name in ("httpx", "httpx2"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if module not in found:
            found.append(module)
    return found


_MODULES = _modules()
TIMEOUT_ERRORS: tuple[type[Exception], ...] = tuple(m.TimeoutException for m in _MODULES)
CONNECT_TIMEOUT_ERRORS: tuple[type[Exception], ...] = tuple(m.ConnectTimeout for m in _MODULES)
TRANSPORT_ERRORS: tuple[type[Exception], ...] = tuple(m.TransportError for m in _MODULES)

__all__ = ["CONNECT_TIMEOUT_ERRORS", "TIMEOUT_ERRORS", "TRANSPORT_ERRORS", "http"]
