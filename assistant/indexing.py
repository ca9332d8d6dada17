"""The app's retrieval index: the one place that knows which corpus the app indexes.

Every entry point (``medkg serve``, ``medkg index build``, the runtime, the QA evaluation)
opens the index through here, so all of them pass the same corpus arguments and a stored
index is loaded rather than rebuilt because of a checksum mismatch.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.settings import Settings

if TYPE_CHECKING:
    from retrieval import HybridRetriever
    from retrieval.builder import BuildProgress

log = logging.getLogger(__name__)


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
) -> HybridRetriever:
    """Load the index in ``settings.index_dir``, building it first when missing or stale."""
    from retrieval import build_or_load_index

    return build_or_load_index(
        settings.index_dir,
        model=settings.retrieval.embedding_model,
        extra_documents=graph_documents(),
        limit=limit if limit is not None else settings.retrieval.corpus_limit,
        index_kind=settings.retrieval.index_kind,
        force=force,
        benchmark_dir=benchmark_dir,
        progress=progress,
    )
