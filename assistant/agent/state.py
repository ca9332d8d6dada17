"""Typed agent state. Values are plain JSON (model dumps) so the SQLite checkpointer stores them
without custom serializers and a process restart reads them back exactly."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict

from assistant.settings import Settings
from kg.models import Observation, StopRule

Json = dict[str, Any]


class AgentState(TypedDict, total=False):
    transcript: Annotated[list[Json], operator.add]  # {"role": "patient"|"assistant", "text"}
    new_text: str  # the patient message this run processes (intake input)
    age: int | None
    sex: str | None
    findings: list[Json]  # Observation dumps; at most one per (finding, value)
    differential: list[Json]  # RankedDisease dumps, best first
    entropy: float
    asked: list[str]  # finding ids asked so far (in order)
    pending: Json | None  # FollowUp dump while a question waits for its answer
    passages: list[Json]
    image_findings: list[Json]  # ImageFinding dumps of every image so far
    new_image_findings: list[Json]  # input: findings of the image sent with this message
    image_note: str | None
    status: str  # ConsultationStatus
    stop_reason: str
    urgent_reasons: list[str]
    urgent_new: bool  # urgency first detected in this turn
    message: str  # what the assistant says this turn
    next_steps: list[str]
    notes: list[str]  # per-turn remarks shown above the main message


@dataclass(frozen=True)
class AgentOptions:
    """Knobs of the agent (evaluation switches LLM use on and off through these)."""

    llm_phrasing: bool = True  # LLM rephrases the graph's question text
    llm_extraction: bool = True  # LLM confirms fuzzy (embedding) finding candidates
    llm_summary: bool = True  # LLM writes a short explanation of the differential
    stop: StopRule = field(default_factory=StopRule)  # passed whole to GraphStore.next_step
    differential_top_k: int = 10
    show_top: int = 5
    retrieval_k: int = 3
    stop_on_urgent: bool = False  # True: end the consultation when urgency is found
    embedding_threshold: float = 0.6  # fuzzy candidate threshold (cosine, MiniLM)
    embedding_accept: float = 0.72  # a clause's best fuzzy candidate this close is kept without the LLM
    llm_max_tokens: int = 160

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> AgentOptions:
        agent = settings.agent
        values: dict[str, Any] = {"stop": agent.stop}
        # Optional fields a newer AgentSettings may carry (same names as here).
        for name in ("llm_phrasing", "llm_extraction", "llm_summary", "retrieval_k", "stop_on_urgent"):
            if hasattr(agent, name):
                values[name] = getattr(agent, name)
        values.update(overrides)
        return cls(**values)


def observations(state: AgentState) -> list[Observation]:
    return [Observation.model_validate(o) for o in state.get("findings") or []]


def merge_observations(existing: list[Observation], new: list[Observation]) -> list[Observation]:
    """Newer statements about a finding replace older ones (that is how corrections work);
    an image finding never overrides what the patient said."""
    by_finding: dict[str, list[Observation]] = {}
    for o in existing:
        by_finding.setdefault(o.finding_id, []).append(o)
    incoming: dict[str, list[Observation]] = {}
    for o in new:
        incoming.setdefault(o.finding_id, []).append(o)
    for fid, obs in incoming.items():
        old = by_finding.get(fid, [])
        if all(o.source == "image" for o in obs) and any(o.source != "image" for o in old):
            continue
        # De-duplicate values inside one statement (multi-choice answers).
        seen: dict[str | None, Observation] = {}
        for o in obs:
            seen[o.value] = o
        by_finding[fid] = list(seen.values())
    return [o for obs in by_finding.values() for o in obs]
