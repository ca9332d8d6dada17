"""Everything a DDX evaluation needs around the policies: servers, graph, policies by name."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from assistant.settings import Settings
from eval.ddx.baselines import NaiveBayesTable
from eval.ddx.policies import (
    POLICY_NAMES,
    AgentPolicy,
    BaselinePolicy,
    GraphPolicy,
    InquiryConfig,
    NoQuestionsPolicy,
    Policy,
    RandomQuestionsPolicy,
)
from kg.store import GraphStore

log = logging.getLogger(__name__)


@contextmanager
def graph_and_settings(
    settings: Settings, *, need_llm: bool, handle_signals: bool = False
) -> Iterator[tuple[Settings, GraphStore]]:
    """Use the configured servers or start the embedded ones; load the full graph if it is empty.

    ``handle_signals`` (command-line use): SIGTERM / Ctrl-C stop the started servers too."""
    from assistant.services import (
        connect_graph,
        embedded_graph_service,
        embedded_llm_service,
        ensure_graph_current,
        graph_uri,
        llm_base_url,
    )
    from assistant.supervisor import ServiceGroup

    with ServiceGroup() as group:
        if handle_signals:
            group.install_signal_handlers()
        if settings.graph.uri is None:
            service = group.start(embedded_graph_service(settings))
            graph = settings.graph.model_copy(update={"uri": graph_uri(service)})
            settings = settings.model_copy(update={"graph": graph})
        if need_llm and settings.llm.base_url is None:
            service = group.start(embedded_llm_service(settings))
            llm = settings.llm.model_copy(update={"base_url": llm_base_url(service)})
            settings = settings.model_copy(update={"llm": llm})
        store = connect_graph(settings)
        try:
            if ensure_graph_current(store) is not None:
                log.info("loaded the full merged graph (empty or older version)")
            yield settings, store
        finally:
            store.close()


@contextmanager
def build_policies(
    names: Sequence[str], store: GraphStore, settings: Settings, *, config: InquiryConfig, seed: int
) -> Iterator[list[Policy]]:
    """Policies in the order asked; the agent's runtime is closed on exit."""
    unknown = [n for n in names if n not in POLICY_NAMES]
    if unknown:
        raise ValueError(f"unknown policy {', '.join(unknown)}; choose among {', '.join(POLICY_NAMES)}")
    with ExitStack() as stack:
        policies: list[Policy] = []
        for name in dict.fromkeys(names):
            if name == "full":
                policies.append(AgentPolicy(stack.enter_context(_consultation(settings, config))))
            elif name == "baseline":
                policies.append(BaselinePolicy(NaiveBayesTable.from_graph(store)))
            elif name == "graph":
                policies.append(GraphPolicy(store))
            elif name == "random":
                policies.append(RandomQuestionsPolicy(store, seed=seed))
            else:
                policies.append(NoQuestionsPolicy(store))
        yield policies


@contextmanager
def _consultation(settings: Settings, config: InquiryConfig) -> Iterator[Any]:
    from assistant.consultation import Consultation
    from assistant.runtime import Runtime

    # The agent stops by the same rule as the other policies.
    agent = settings.agent.model_copy(update={"stop": config.stop})
    settings = settings.model_copy(update={"agent": agent})
    # Retrieval only adds cited passages to the final answer, never changes the differential, so
    # the evaluation skips loading the index; sessions stay in memory, out of the user's history.
    runtime = Runtime.from_settings(settings, load_retriever=False)
    try:
        yield Consultation(runtime, settings, sessions_path=":memory:")
    finally:
        runtime.close()
