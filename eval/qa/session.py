"""What a QA run needs, started from the settings: LLM, and per mode the index and the graph.

The configured servers are used when set (OPENAI_BASE_URL, NEO4J_URI); otherwise the embedded
ones are started for the run and stopped after it. An empty graph is loaded once
(``kg.load_graph``); a missing index is built in ``settings.index_dir``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from assistant.llm.base import ChatModel
from assistant.services import embedded_graph_service, embedded_llm_service, graph_uri, llm_base_url
from assistant.settings import Settings
from assistant.supervisor import ServiceGroup
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


def open_retriever(settings: Settings) -> Retriever:
    from assistant.indexing import open_app_index

    return open_app_index(settings)


def open_graph(settings: Settings, uri: str) -> GraphStore:
    from assistant.services import connect_graph, ensure_graph_current

    store = connect_graph(
        settings.model_copy(update={"graph": settings.graph.model_copy(update={"uri": uri})})
    )
    try:
        if ensure_graph_current(store) is not None:
            log.info("loaded the full merged graph (empty or older version)")
    except BaseException:
        store.close()
        raise
    return store


@contextmanager
def open_resources(
    settings: Settings, modes: Sequence[Mode], *, handle_signals: bool = False
) -> Iterator[QAResources]:
    """``handle_signals`` (command line only): stop the started servers on SIGTERM/Ctrl-C too."""
    with ServiceGroup() as group, ExitStack() as stack:
        if handle_signals:
            group.install_signal_handlers()
        base_url = settings.llm.base_url
        if base_url is None:
            log.info("starting the embedded LLM server")
            base_url = llm_base_url(group.start(embedded_llm_service(settings)))
        from assistant.llm import create_chat_model

        chat = create_chat_model(settings.llm.model_copy(update={"base_url": base_url}))
        if hasattr(chat, "close"):
            stack.callback(chat.close)
        resources = QAResources(chat=chat, llm_base_url=base_url)
        if any(m.needs_retriever for m in modes):
            resources.retriever = open_retriever(settings)
        if any(m.needs_graph for m in modes):
            uri = settings.graph.uri
            if uri is None:
                log.info("starting the embedded graph server")
                uri = graph_uri(group.start(embedded_graph_service(settings)))
            resources.graph = open_graph(settings, uri)
            stack.callback(resources.graph.close)
            resources.kg = KGContext(resources.graph)
        yield resources
