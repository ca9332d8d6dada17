"""Typed agent state. Values are plain JSON (model dumps) so the SQLite checkpointer stores them
without custom serializers and a process restart reads them back exactly."""

from __future__ import annotations

import operator
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict

from pydantic import BaseModel

from assistant.contracts import FollowUp, ImageFinding
from assistant.settings import Settings
from kg.models import Observation, RankedDisease, Sex, StopRule
from retrieval.base import Passage

Json = dict[str, Any]


class TurnInput(TypedDict, total=False):
    """What one run of the graph takes (LangGraph input schema): the patient's message, the
    demographics given up front, and the findings of an image sent with it."""

    new_text: str
    age: int | None
    sex: Sex | None
    new_image_findings: list[Json]
    image_note: str | None


class TurnOutput(TypedDict, total=False):
    """What one run hands back (LangGraph output schema); read typed through the accessors below."""

    status: str
    message: str
    pending: Json | None
    differential: list[Json]
    findings: list[Json]
    passages: list[Json]
    image_findings: list[Json]
    urgent_reasons: list[str]
    next_steps: list[str]
    asked: list[str]
    age: int | None
    sex: Sex | None


class AgentState(TypedDict, total=False):
    transcript: Annotated[list[Json], operator.add]  # {"role": "patient"|"assistant", "text"}
    new_text: str  # the patient message this run processes (intake input)
    age: int | None
    sex: Sex | None
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


# The one accessor between the checkpointed JSON and the typed models: nodes and the facade
# read the state through these, and write model dumps (``dump``).
def observations(state: AgentState) -> list[Observation]:
    return [Observation.model_validate(o) for o in state.get("findings") or []]


def ranked(state: AgentState) -> list[RankedDisease]:
    return [RankedDisease.model_validate(d) for d in state.get("differential") or []]


def pending(state: AgentState) -> FollowUp | None:
    raw = state.get("pending")
    return FollowUp.model_validate(raw) if raw else None


def passages(state: AgentState) -> list[Passage]:
    return [Passage.model_validate(p) for p in state.get("passages") or []]


def image_findings(state: AgentState) -> list[ImageFinding]:
    return [ImageFinding.model_validate(f) for f in state.get("image_findings") or []]


def dump(models: Iterable[BaseModel]) -> list[Json]:
    return [m.model_dump(mode="json") for m in models]


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
