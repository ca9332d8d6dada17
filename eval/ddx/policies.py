"""The inquiry policies compared on the same simulated patients and question budget.

- ``full``: the whole agent through ``assistant.consultation.Consultation`` (LLM + graph).
- ``graph``: the graph alone, ``GraphStore.differential`` + ``next_step`` (no LLM): separates
  graph quality from agent overhead.
- ``baseline``: the plain noisy-naive-Bayes + information-gain table of ``baselines.py``.
- ``random``: graph ranking, but questions drawn at random among findings of the top candidates.
- ``none``: graph ranking from the initial evidence only, no questions.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from eval.ddx.baselines import NaiveBayesTable
from eval.ddx.simulator import SimAnswer, SimulatedPatient
from kg.models import Differential, Evidence, StopRule
from kg.store import GraphStore

POLICY_NAMES = ("full", "baseline", "graph", "random", "none")


@dataclass(frozen=True)
class InquiryConfig:
    # The same rule for every policy (the agent's too); max_questions is a cap per patient and
    # the mean is reported.
    stop: StopRule = field(default_factory=StopRule)
    top_k: int = 10  # size of the final differential

    def record(self) -> dict[str, Any]:
        """Flat, JSON-ready: the stop rule's fields, then top_k (the results' ``config`` keys)."""
        return {**self.stop.model_dump(), "top_k": self.top_k}


@dataclass
class Episode:
    """One policy on one patient."""

    patient_id: str
    policy: str
    ranking: list[tuple[str, float]] = field(default_factory=list)  # (disease_id, probability)
    asked: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)  # yes / no / unknown per question
    seconds: float = 0.0
    stop_reason: str = ""
    error: str | None = None

    @property
    def questions(self) -> int:
        return len(self.asked)

    def record(self, answer: SimAnswer) -> None:
        self.asked.append(answer.finding_id)
        self.answers.append({True: "yes", False: "no", None: "unknown"}[answer.present])


class Policy(Protocol):
    name: str

    def run(self, patient: SimulatedPatient, config: InquiryConfig) -> Episode: ...


def _ranking(differential: Differential) -> list[tuple[str, float]]:
    return [(d.disease_id, d.probability) for d in differential.diseases]


def _start_evidence(patient: SimulatedPatient) -> Evidence:
    return Evidence(
        observations=[patient.initial_observation()],
        age=patient.patient.age,
        sex=patient.patient.sex,
    )


class NoQuestionsPolicy:
    name = "none"

    def __init__(self, store: GraphStore) -> None:
        self.store = store

    def run(self, patient: SimulatedPatient, config: InquiryConfig) -> Episode:
        episode = Episode(patient.patient.id, self.name, stop_reason="no_questions")
        differential = self.store.differential(_start_evidence(patient), top_k=config.top_k)
        episode.ranking = _ranking(differential)
        return episode


class GraphPolicy:
    """The graph's own inquiry loop: next_step picks the question, differential ranks."""

    name = "graph"

    def __init__(self, store: GraphStore) -> None:
        self.store = store

    def run(self, patient: SimulatedPatient, config: InquiryConfig) -> Episode:
        episode = Episode(patient.patient.id, self.name)
        evidence = _start_evidence(patient)
        differential = self.store.differential(evidence, top_k=config.top_k)
        while True:
            if episode.questions >= config.stop.max_questions:
                episode.stop_reason = "budget"
                break
            step = self.store.next_step(evidence, differential, config.stop)  # counts the answers itself
            if step.question is None:
                episode.stop_reason = step.stop_reason
                break
            answer = patient.answer(step.question.finding.id)
            episode.record(answer)
            evidence.observations.extend(answer.observations())
            differential = self.store.differential(evidence, top_k=config.top_k)
        episode.ranking = _ranking(differential)
        return episode


class RandomQuestionsPolicy:
    """Graph ranking with questions drawn at random among the top candidates' findings."""

    name = "random"

    def __init__(self, store: GraphStore, seed: int = 0) -> None:
        self.store = store
        self.seed = seed

    def run(self, patient: SimulatedPatient, config: InquiryConfig) -> Episode:
        rng = random.Random(f"{self.seed}:{patient.patient.id}")
        episode = Episode(patient.patient.id, self.name)
        evidence = _start_evidence(patient)
        differential = self.store.differential(evidence, top_k=config.top_k)
        while True:
            top = differential.top
            if top is not None and top.probability >= config.stop.posterior_threshold:
                episode.stop_reason = "confident"
                break
            if episode.questions >= config.stop.max_questions:
                episode.stop_reason = "budget"
                break
            ids = [d.disease_id for d in differential.diseases[: config.stop.top_candidates]]
            asked = evidence.asked()
            pool = sorted(
                {
                    link.finding_id
                    for facts in self.store.disease_facts(ids, max_findings=50)
                    for link in facts.findings
                }
                - asked
            )
            if not pool:
                episode.stop_reason = "no_candidates"
                break
            answer = patient.answer(rng.choice(pool))
            episode.record(answer)
            evidence.observations.extend(answer.observations())
            differential = self.store.differential(evidence, top_k=config.top_k)
        episode.ranking = _ranking(differential)
        return episode


class BaselinePolicy:
    """The plain noisy-naive-Bayes table, asking by greedy information gain."""

    name = "baseline"

    def __init__(self, table: NaiveBayesTable) -> None:
        self.table = table

    def run(self, patient: SimulatedPatient, config: InquiryConfig) -> Episode:
        episode = Episode(patient.patient.id, self.name)
        first = patient.answer(patient.initial_finding_id)
        evidence: dict[str, bool] = {first.finding_id: bool(first.present)}
        asked: set[str] = {first.finding_id}
        posterior = self.table.posterior(evidence)
        while True:
            if float(posterior.max()) >= config.stop.posterior_threshold:
                episode.stop_reason = "confident"
                break
            if episode.questions >= config.stop.max_questions:
                episode.stop_reason = "budget"
                break
            choice = self.table.best_question(posterior, asked, config.stop.top_candidates)
            if choice is None or choice[1] < config.stop.min_information_gain:
                episode.stop_reason = "low_gain" if choice else "no_candidates"
                break
            answer = patient.answer(choice[0])
            episode.record(answer)
            asked.add(answer.finding_id)
            if answer.present is not None:
                evidence[answer.finding_id] = answer.present
                posterior = self.table.posterior(evidence)
        episode.ranking = self.table.ranking(posterior, config.top_k)
        return episode


class AgentPolicy:
    """The full agent: the patient's opening goes to ``Consultation.start``, each follow-up
    question is answered in words through ``Consultation.answer``."""

    name = "full"

    def __init__(self, consultation: Any) -> None:
        self.consultation = consultation

    def run(self, patient: SimulatedPatient, config: InquiryConfig) -> Episode:
        episode = Episode(patient.patient.id, self.name)
        result = self.consultation.start(patient.opening(), age=patient.patient.age, sex=patient.patient.sex)
        # The agent holds its own budget (the same stop rule, settings.agent.stop); a hard cap
        # guards a loop.
        hard_cap = 2 * config.stop.max_questions + 2
        while result.follow_up is not None and result.status in ("asking", "urgent"):
            if episode.questions >= hard_cap:
                episode.stop_reason = "hard_cap"
                break
            answer = patient.answer(result.follow_up.finding_id)
            episode.record(answer)
            result = self.consultation.answer(result.session_id, answer.text)
        episode.stop_reason = episode.stop_reason or result.status
        episode.ranking = [(d.disease_id, d.probability) for d in result.differential]
        return episode


def timed(policy: Policy, patient: SimulatedPatient, config: InquiryConfig) -> Episode:
    """Run one episode; an error becomes part of the result, never a crash of the whole run."""
    started = time.perf_counter()
    try:
        episode = policy.run(patient, config)
    except Exception as exc:  # one failing patient must not end the evaluation
        episode = Episode(patient.patient.id, policy.name, error=f"{type(exc).__name__}: {exc}")
    episode.seconds = time.perf_counter() - started
    return episode
