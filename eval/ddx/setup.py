"""The DDX evaluation's policies, by name, over an assembled app's graph and agent."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from assistant.agent.context import AgentContext
    from assistant.consultation import Consultation

log = logging.getLogger(__name__)


@contextmanager
def build_policies(
    names: Sequence[str],
    store: GraphStore,
    settings: Settings,
    *,
    config: InquiryConfig,
    seed: int,
    agent: AgentContext | None = None,
) -> Iterator[list[Policy]]:
    """Policies in the order asked; "full" (the whole agent) needs ``agent``, the app's agent
    context (``assistant.app.open_app`` with the LLM)."""
    unknown = [n for n in names if n not in POLICY_NAMES]
    if unknown:
        raise ValueError(f"unknown policy {', '.join(unknown)}; choose among {', '.join(POLICY_NAMES)}")
    with ExitStack() as stack:
        policies: list[Policy] = []
        for name in dict.fromkeys(names):
            if name == "full":
                if agent is None:
                    raise ValueError("the full agent policy needs the LLM: open the app with it")
                policies.append(AgentPolicy(stack.enter_context(_consultation(agent, settings, config))))
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
def _consultation(agent: AgentContext, settings: Settings, config: InquiryConfig) -> Iterator[Consultation]:
    from assistant.consultation import Consultation

    # The agent stops by the same rule as the other policies; sessions stay in memory, out of
    # the user's history. Retrieval only adds cited passages to the final answer, never changes
    # the differential, so the evaluation opens the app without the index.
    settings = settings.model_copy(update={"agent": settings.agent.model_copy(update={"stop": config.stop})})
    with Consultation(agent, settings, sessions_path=":memory:") as consultation:
        yield consultation
