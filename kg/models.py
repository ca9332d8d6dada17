"""Typed boundary of the knowledge graph package (pydantic models shared with the agent)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FindingKind = Literal["symptom", "sign", "history", "risk_factor", "imaging", "lab"]
ValueType = Literal["binary", "categorical", "multi"]
ObservationSource = Literal["text", "answer", "image", "initial"]
Sex = Literal["M", "F"]


# A value finding's id: evidence id + separator + value code (DDXPlus's own notation, E_55_@_V_89).
VALUE_SEPARATOR = "_@_"


class FindingConcept(BaseModel):
    """A finding as the graph holds it (enough to extract, ask and display it)."""

    id: str
    name: str
    synonyms: list[str] = Field(default_factory=list)
    kind: FindingKind = "symptom"
    question: str | None = None
    value_type: ValueType = "binary"
    # value code -> human meaning, for categorical / multi-choice findings
    allowed_values: dict[str, str] = Field(default_factory=dict)
    red_flag: bool = False
    sources: list[str] = Field(default_factory=list)
    # Set on a value finding ("pain location: pharynx"): the categorical evidence it is a value of.
    value_of: str | None = None


class DiseaseConcept(BaseModel):
    id: str
    name: str
    synonyms: list[str] = Field(default_factory=list)
    icd10: list[str] = Field(default_factory=list)
    severity: int | None = None  # 1 (most severe) .. 5, DDXPlus convention
    description: str | None = None
    prior: float | None = None
    sources: list[str] = Field(default_factory=list)


class Observation(BaseModel):
    """What is known about one finding in one patient."""

    finding_id: str
    present: bool | None  # None = patient does not know
    value: str | None = None  # categorical / multi-choice value code
    source: ObservationSource = "text"
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)


class Evidence(BaseModel):
    observations: list[Observation] = Field(default_factory=list)
    age: int | None = Field(default=None, ge=0, le=130)
    sex: Sex | None = None

    def asked(self) -> set[str]:
        return {o.finding_id for o in self.observations}


class FindingLink(BaseModel):
    """One edge of evidence for or against a disease, with the graph path it came from."""

    finding_id: str
    finding_name: str
    p: float
    present: bool
    value: str | None = None
    source: str | None = None
    path: str = ""


class RankedDisease(BaseModel):
    disease_id: str
    name: str
    probability: float
    log_score: float
    severity: int | None = None
    icd10: list[str] = Field(default_factory=list)
    supporting: list[FindingLink] = Field(default_factory=list)
    contradicting: list[FindingLink] = Field(default_factory=list)
    severe: bool = False
    # Serious and still at least 1% likely: kept on the differential however low it ranks.
    cannot_exclude: bool = False


class Differential(BaseModel):
    diseases: list[RankedDisease]
    entropy: float
    red_flags: list[FindingConcept] = Field(default_factory=list)
    unknown_findings: list[str] = Field(default_factory=list)

    @property
    def top(self) -> RankedDisease | None:
        return self.diseases[0] if self.diseases else None

    def candidate_ids(self) -> set[str]:
        return {d.disease_id for d in self.diseases}


class Question(BaseModel):
    finding: FindingConcept
    information_gain: float
    text: str


# Inquiry stop rule defaults: stop when the top posterior reaches the threshold, after the
# question budget, or when no question gains the minimum information. The budget is a cap
# per consultation, not a target: confident cases stop early, uncertain ones use more
# questions (measured trade-off in docs/kg.md, "Stop rule").
DEFAULT_POSTERIOR_THRESHOLD = 0.95
DEFAULT_MAX_QUESTIONS = 16
DEFAULT_MIN_INFORMATION_GAIN = 0.01
DEFAULT_TOP_CANDIDATES = 10


class StopRule(BaseModel):
    """When the inquiry stops, and among which diseases it looks for the next question.

    One value passed whole from the settings (``settings.agent.stop``) to the agent, the
    evaluations and ``GraphStore.next_step``. A new knob is one new field here: the settings
    (TOML ``[agent]`` keys and ``MEDKG_AGENT__<FIELD>`` variables), the agent options, the
    evaluation config and its recorded results all carry the model whole.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # A cap on the patient's answers per consultation, not a target.
    max_questions: int = Field(default=DEFAULT_MAX_QUESTIONS, ge=0)
    # Stop ("confident") once the top posterior reaches this.
    posterior_threshold: float = Field(default=DEFAULT_POSTERIOR_THRESHOLD, ge=0.0, le=1.0)
    # Stop ("low_gain") when no question's expected information gain (nats) reaches this.
    min_information_gain: float = Field(default=DEFAULT_MIN_INFORMATION_GAIN, ge=0.0)
    # Questions are drawn from the findings of this many best-ranked diseases.
    top_candidates: int = Field(default=DEFAULT_TOP_CANDIDATES, ge=1)

    def updated(self, **changes: Any) -> StopRule:
        """A copy with ``changes`` applied and validated (``model_copy`` would not validate)."""
        return type(self).model_validate({**self.model_dump(), **changes})


class NextStep(BaseModel):
    """Decision after a differential: ask, or stop and why."""

    question: Question | None
    stop_reason: Literal["confident", "low_gain", "budget", "no_candidates", "asking"]


class GraphStats(BaseModel):
    labels: dict[str, int]
    relations: dict[str, int]
    version: str | None = None
    checksum: str | None = None
    calibration: str | None = None  # what `medkg kg calibrate` learned from, if it ran


class Treatment(BaseModel):
    drug_id: str
    drug_name: str
    kind: str


class DiseaseFacts(BaseModel):
    """Compact facts about one disease, for explanations and KG-RAG prompts."""

    disease: DiseaseConcept
    findings: list[FindingLink] = Field(default_factory=list)
    treatments: list[Treatment] = Field(default_factory=list)
    parents: list[str] = Field(default_factory=list)
