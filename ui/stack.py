"""Bring up everything a served app needs, in order, and take it down in reverse.

Embedded services the settings leave unconfigured -> graph loaded if empty -> retrieval index
built if missing -> Runtime (LLM client, graph, retriever, image encoder) -> Consultation.
Used by ``medkg serve`` and by ``bench/api.py``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from assistant.settings import Settings
from assistant.supervisor import ServiceGroup

log = logging.getLogger(__name__)

Echo = Callable[[str], None]


@dataclass
class Stack:
    settings: Settings  # pointing at the running services
    runtime: Any
    consultation: Any


@contextlib.contextmanager
def _step(echo: Echo, what: str) -> Iterator[None]:
    echo(f"… {what}")
    started = time.monotonic()
    yield
    echo(f"✓ {what} ({time.monotonic() - started:.1f}s)")


def ensure_graph_loaded(settings: Settings, echo: Echo) -> None:
    from assistant.services import connect_graph, ensure_graph_current
    from kg.loader import graph_checksum

    store = connect_graph(settings)
    try:
        stats = store.stats()
        diseases = stats.labels.get("Disease", 0)
        if diseases and stats.checksum == graph_checksum()[0]:
            echo(f"  graph holds {diseases} diseases")
            return
        what = (
            "refreshing the knowledge graph (new version)"
            if diseases
            else "loading the knowledge graph (first run only)"
        )
        with _step(echo, what):
            report = ensure_graph_current(store)
        echo(f"  {report}")
    finally:
        store.close()


def load_retriever(settings: Settings, echo: Echo) -> tuple[Any | None, str | None]:
    """The retriever over settings.index_dir, built first if missing or stale.

    The corpus arguments (model, graph descriptions, corpus limit) are the ones the index
    was built with, so that a second start loads it instead of rebuilding.
    """
    from assistant.indexing import app_index_exists, open_app_index

    index_dir = settings.index_dir
    fresh = not app_index_exists(settings)
    what = f"building the retrieval index in {index_dir} (first run only)" if fresh else "loading the index"
    try:
        with _step(echo, what):
            retriever = open_app_index(settings)
    except Exception as exc:  # evidence passages are optional; consultations still work
        log.warning("retrieval index unavailable: %s", exc)
        return None, f"retrieval index could not be built or loaded: {exc}"
    return retriever, None


def _build_index_in_background(settings: Settings, runtime: Any, echo: Echo) -> threading.Thread:
    runtime.retriever_disabled_reason = (
        "the evidence index is being built (first run only); passages appear once it is ready"
    )

    def build() -> None:
        retriever, reason = load_retriever(settings, echo)
        runtime.retriever_disabled_reason = reason
        runtime.retriever = retriever

    thread = threading.Thread(target=build, name="medkg-index-build", daemon=True)
    thread.start()
    echo("  retrieval index: building in the background (first run only); the app serves meanwhile")
    return thread


@contextlib.contextmanager
def open_stack(
    settings: Settings,
    *,
    echo: Echo = print,
    group: ServiceGroup | None = None,
    background_index: bool = False,
) -> Iterator[Stack]:
    """``background_index``: a missing index is built in a thread while the app already serves
    (embedding the full corpus takes tens of minutes on a laptop CPU); answers carry no
    passages until it is ready."""
    from assistant.consultation import Consultation
    from assistant.indexing import app_index_exists
    from assistant.runtime import Runtime
    from assistant.services import start_embedded

    own_group = group is None
    group = group or ServiceGroup()
    runtime = consultation = None
    try:
        with _step(echo, "starting embedded services"):
            settings = start_embedded(settings, group)
        echo(f"  LLM at {settings.llm.base_url}, graph at {settings.graph.uri}")
        ensure_graph_loaded(settings, echo)
        build_in_background = background_index and not app_index_exists(settings)
        if not build_in_background:
            retriever, retriever_reason = load_retriever(settings, echo)
        with _step(echo, "connecting the runtime (LLM, graph, image encoder) and warming its caches"):
            runtime = Runtime.from_settings(settings, load_retriever=False)
            if build_in_background:
                _build_index_in_background(settings, runtime, echo)
            else:
                runtime.retriever = retriever
                runtime.retriever_disabled_reason = retriever_reason
            runtime.warm_up()
        if runtime.image_analyzer is None:
            echo(f"  image analysis disabled: {runtime.image_disabled_reason}")
        if runtime.retriever is None:
            echo(f"  retrieval disabled: {runtime.retriever_disabled_reason}")
        consultation = Consultation(runtime, settings)
        yield Stack(settings=settings, runtime=runtime, consultation=consultation)
    finally:
        if consultation is not None:
            consultation.close()
        if runtime is not None:
            runtime.close()
        if own_group:
            group.stop_all()
