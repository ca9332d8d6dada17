"""One call from a patients file to a written report (used by the CLI and the benchmark)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.app import GRAPH_ONLY, Needs, open_app
from assistant.settings import Settings
from eval.ddx.metrics import DEFAULT_CUTOFF
from eval.ddx.policies import InquiryConfig
from eval.ddx.runner import DdxRun, Progress, evaluate
from eval.ddx.setup import build_policies
from kg.calibration import calibrated_on
from kg.ddxplus.definitions import load_definitions
from kg.ddxplus.mapping import DiseaseMapper
from kg.ddxplus.records import read_patients
from kg.models import StopRule
from kg.store import GraphStore

if TYPE_CHECKING:  # the agent context (numpy, the text core, imaging) is a type here only
    from assistant.agent.context import AgentContext

DEFAULT_POLICIES = ("full", "baseline", "random", "none")


def evaluate_with_store(
    store: GraphStore,
    settings: Settings,
    patients_file: Path | str,
    *,
    policies: Sequence[str] = DEFAULT_POLICIES,
    limit: int | None = None,
    stop: StopRule | None = None,
    seed: int = 0,
    cutoff: float = DEFAULT_CUTOFF,
    progress: Progress | None = None,
    agent: AgentContext | None = None,
) -> DdxRun:
    """Every policy under the same stop rule: ``stop``, else the settings' (``settings.agent.stop``).
    The "full" policy runs the agent of ``agent`` (an assembled app's context)."""
    if calibrated_on(store.stats().calibration, patients_file):
        raise ValueError(
            f"the graph was calibrated on {Path(patients_file).name}: scoring the records it learned "
            "from would overstate accuracy. Evaluate on other patients, or restore the shipped graph "
            "with `medkg kg load --force`."
        )
    definitions = load_definitions()
    patients = read_patients(patients_file, limit)
    if not patients:
        raise ValueError(f"no patients in {patients_file}")
    mapper = DiseaseMapper(store.diseases(), definitions)
    finding_names = {f.id: f.name for f in store.findings()}
    config = InquiryConfig(stop=settings.agent.stop if stop is None else stop)
    with build_policies(policies, store, settings, config=config, seed=seed, agent=agent) as built:
        return evaluate(
            patients,
            built,
            mapper=mapper,
            definitions=definitions,
            finding_names=finding_names,
            config=config,
            cutoff=cutoff,
            seed=seed,
            progress=progress,
            extra_config={"patients_file": str(patients_file), "graph": store.stats().model_dump()},
        )


def evaluate_from_settings(
    settings: Settings,
    patients_file: Path | str,
    *,
    policies: Sequence[str] = DEFAULT_POLICIES,
    handle_signals: bool = False,
    **kwargs: object,
) -> DdxRun:
    """Start (or reach) the servers the policies need, then evaluate."""
    with open_app(settings, evaluation_needs(policies, handle_signals=handle_signals)) as app:
        return evaluate_with_store(
            app.require_graph(),
            app.settings,
            patients_file,
            policies=policies,
            agent=app.context,
            **kwargs,  # type: ignore[arg-type]
        )


def evaluation_needs(policies: Sequence[str], *, handle_signals: bool = False) -> Needs:
    """The graph always; the LLM only for the whole agent ("full"); no index, images or sessions."""
    return GRAPH_ONLY.model_copy(update={"llm": "full" in policies, "handle_signals": handle_signals})
