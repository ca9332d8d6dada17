"""Public models of the consultation facade, shared by the CLI, the UI, the API and evaluation."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from kg.models import Observation, RankedDisease, Sex
from retrieval.base import Passage
from vlm.zero_shot import ImageFinding

ConsultationStatus = Literal["asking", "answered", "urgent", "needs_input"]


class SessionNotFoundError(KeyError):
    """No consultation with this session id (or not one the caller may see)."""


class NoPendingQuestionError(RuntimeError):
    """An answer was sent, but the consultation is not waiting for one."""


class FollowUp(BaseModel):
    """The one question the assistant is waiting on."""

    finding_id: str
    text: str  # as phrased to the patient
    graph_text: str  # the graph's own question text
    choices: list[str] = Field(default_factory=lambda: ["Yes", "No", "Don't know"])
    information_gain: float = 0.0


class TurnResult(BaseModel):
    session_id: str
    status: ConsultationStatus
    message: str  # what the assistant says this turn (markdown)
    follow_up: FollowUp | None = None
    differential: list[RankedDisease] = Field(default_factory=list)
    findings: list[Observation] = Field(default_factory=list)
    passages: list[Passage] = Field(default_factory=list)
    image_findings: list[ImageFinding] = Field(default_factory=list)
    urgent: bool = False
    urgent_reasons: list[str] = Field(default_factory=list)
    next_steps: list[str] = Field(default_factory=list)
    disclaimer: str = ""
    questions_asked: int = 0
    # What the consultation knows of the patient: given when it was opened, or read from the
    # patient's words ("I am a 34 year old woman"). None is unknown; 0 is under one year.
    age: int | None = None
    sex: Sex | None = None
    # What this turn had to do without (e.g. "llm unavailable: phrasing from templates"); the
    # message says so too. Empty when every component answered.
    degraded: list[str] = Field(default_factory=list)


class TranscriptEntry(BaseModel):
    role: Literal["patient", "assistant"]
    text: str


class ConsultationState(BaseModel):
    session_id: str
    age: int | None = None
    sex: Sex | None = None
    transcript: list[TranscriptEntry] = Field(default_factory=list)
    last: TurnResult | None = None
