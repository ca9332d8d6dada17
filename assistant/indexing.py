"""The app's retrieval index: the one place that knows which corpus the app indexes.

Every entry point (``medkg serve``, ``medkg index build``, the runtime, the QA evaluation)
opens the index through here, so all of them pass the same corpus arguments and a stored
index is loaded rather than rebuilt because of a checksum mismatch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.settings import Settings

if TYPE_CHECKING:
    from retrieval import HybridRetriever
    from retrieval.progress import BuildProgress, IndexProgress

log = logging.getLogger(__name__)

# The latest build/load snapshot of this process and who wants to hear of the next ones:
# /healthz and the terminal read them without threading a callback through the start-up code.
_latest: IndexProgress | None = None
_listeners: list[Callable[[IndexProgress], None]] = []
_lock = threading.Lock()


def index_progress() -> IndexProgress | None:
    """The last progress snapshot of an index build or load in this process (None: none yet)."""
    return _latest


def add_progress_listener(listener: Callable[[IndexProgress], None]) -> Callable[[], None]:
    """Call ``listener`` with every later snapshot; returns a function that removes it."""
    with _lock:
        _listeners.append(listener)

    def remove() -> None:
        with _lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return remove


def _publish(snapshot: IndexProgress) -> None:
    global _latest
    _latest = snapshot
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(snapshot)
        except Exception:  # a display must never break the build
            log.exception("index progress listener failed")


def graph_documents() -> list[dict[str, Any]]:
    """Disease and finding descriptions from the graph sources ([] if kg cannot give them)."""
    try:
        from kg import description_documents

        return list(description_documents())
    except Exception as exc:  # the index is still useful from MedQuAD alone: say so, go on
        log.warning("graph description documents unavailable (%s); indexing MedQuAD only", exc)
        return []


def app_index_exists(settings: Settings) -> bool:
    index_dir = settings.index_dir
    return index_dir.is_dir() and any(index_dir.iterdir())


def open_app_index(
    settings: Settings,
    *,
    limit: int | None = None,
    force: bool = False,
    benchmark_dir: Path | None = None,
    progress: BuildProgress | None = None,
    on_progress: Callable[[IndexProgress], None] | None = None,
    background: bool | None = None,
) -> HybridRetriever:
    """Load the index in ``settings.index_dir``, building it first when missing or stale.

    A build takes the shipped vectors (``retrieval/data``) for every unchanged chunk and embeds
    only the rest; every snapshot goes to ``on_progress``, to :func:`add_progress_listener`
    listeners and to :func:`index_progress`. ``background`` (default: true when called off
    the main thread, i.e. the start-up's background build) embeds on one low-priority thread
    so that consultations keep a core while it runs.
    """
    from retrieval import build_or_load_index
    from retrieval.builder import DEFAULT_ARTIFACT

    def report(snapshot: IndexProgress) -> None:
        _publish(snapshot)
        if on_progress is not None:
            on_progress(snapshot)

    return build_or_load_index(
        settings.index_dir,
        model=settings.retrieval.embedding_model,
        extra_documents=graph_documents(),
        limit=limit if limit is not None else settings.retrieval.corpus_limit,
        index_kind=settings.retrieval.index_kind,
        force=force,
        benchmark_dir=benchmark_dir,
        progress=progress,
        on_progress=report,
        artifact=DEFAULT_ARTIFACT if settings.retrieval.prebuilt_vectors else None,
        background=threading.current_thread() is not threading.main_thread()
        if background is None
        else background,
    )
