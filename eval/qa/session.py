"""What a QA run needs from the assembled app (``assistant.app.open_app``): the LLM, and per
mode the index and the graph. The configured servers are used when set (OPENAI_BASE_URL,
NEO4J_URI); otherwise the embedded ones are started for the run and stopped after it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from assistant.app import Needs, open_app
from assistant.llm.base import ChatModel
from assistant.settings import Settings
from eval.qa.kg_context import KGContext
from eval.qa.modes import Mode
from kg.store import GraphStore
from retrieval.base import Retriever

log = logging.getLogger(__name__)


@dataclass
class QAResources:
    chat: ChatModel
    llm_base_url: str
    retriever: Retriever | None = None
    graph: GraphStore | None = None
    kg: KGContext | None = None


def qa_needs(modes: Sequence[Mode], *, handle_signals: bool = False) -> Needs:
    """The LLM always; the graph and the index only for the modes that read them."""
    return Needs(
        graph=any(m.needs_graph for m in modes),
        retriever="load" if any(m.needs_retriever for m in modes) else "none",
        images=False,
        consultation=False,
        handle_signals=handle_signals,
    )


@contextmanager
def open_resources(
    settings: Settings, modes: Sequence[Mode], *, handle_signals: bool = False
) -> Iterator[QAResources]:
    """``handle_signals`` (command line only): stop the started servers on SIGTERM/Ctrl-C too."""
    needs = qa_needs(modes, handle_signals=handle_signals)
    with open_app(settings, needs) as app:
        if needs.retriever == "load" and app.retriever is None:
            raise RuntimeError(app.disabled.get("retriever", "the retrieval index could not be opened"))
        base_url = app.settings.llm.base_url
        assert base_url is not None  # open_app started the LLM or the settings named it
        yield QAResources(
            chat=app.require_chat_model(),
            llm_base_url=base_url,
            retriever=app.retriever,
            graph=app.graph,
            kg=KGContext(app.graph) if app.graph is not None else None,
        )
