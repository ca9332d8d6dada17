"""A simulated patient: opens with its initial evidence and answers from its hidden evidence list.

Answer rules (the DDXPlus protocol, extended to a merged graph):
- a finding in the patient's list -> yes (with the value's meaning for categorical / multi-choice);
  a listed non-binary evidence holding only its default value (e.g. travel "N", pain radiating
  "nowhere") -> no, because DDXPlus writes the default value for "not present";
- a DDXPlus evidence (an ``E_xx`` id the definitions know) not in the list -> no;
- any other finding (e.g. a SymCat-only symptom the patient's source cannot express) -> don't know.
A per-value finding id ``E_55_@_V_89`` is answered yes only when that value is in the list.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from kg.ddxplus.definitions import DDXPlusDefinitions, EvidenceDef
from kg.ddxplus.records import Patient, split_evidence
from kg.models import Observation, ObservationSource

YES, NO, UNKNOWN = "Yes.", "No.", "I don't know."


@dataclass(frozen=True)
class SimAnswer:
    finding_id: str
    present: bool | None  # None: the patient cannot tell
    values: tuple[str, ...] = ()
    text: str = UNKNOWN

    def observation(self, source: ObservationSource = "answer") -> Observation:
        # The graph's Observation holds one value; the first non-default one is the most telling.
        return Observation(
            finding_id=self.finding_id,
            present=self.present,
            value=self.values[0] if self.values else None,
            source=source,
        )

    def observations(self, source: ObservationSource = "answer") -> list[Observation]:
        """One observation per value of a multi-choice answer (as the agent records them)."""
        if len(self.values) < 2:
            return [self.observation(source)]
        return [
            Observation(finding_id=self.finding_id, present=self.present, value=v, source=source)
            for v in self.values
        ]


_QUESTION_OPENERS = (
    (re.compile(r"^(do|did) you (have|feel|experience|notice)\s+", re.I), "I have "),
    (re.compile(r"^are you\s+", re.I), "I am "),
    (re.compile(r"^have you (been|had|ever had)\s+", re.I), "I have had "),
)


def statement_from_question(question: str) -> str:
    """'Do you have a fever (felt or measured)?' -> 'I have a fever (felt or measured).'"""
    text = question.strip().rstrip("?").strip()
    for pattern, replacement in _QUESTION_OPENERS:
        if pattern.match(text):
            text = pattern.sub(replacement, text, count=1)
            break
    else:
        text = f"I have this: {text}"
    text = re.sub(r"\byour\b", "my", text)
    return text[0].upper() + text[1:] + "."


def statement_from_name(name: str) -> str:
    """'Fever' -> 'I have fever.' (keeps acronyms such as 'COPD' as written)."""
    name = name.strip().rstrip(".")
    first = name.split(" ", 1)[0]
    if not first.isupper():
        name = name[0].lower() + name[1:]
    return f"I have {name}."


class SimulatedPatient:
    def __init__(
        self,
        patient: Patient,
        definitions: DDXPlusDefinitions,
        finding_names: Mapping[str, str] | None = None,
    ) -> None:
        self.patient = patient
        self.definitions = definitions
        self.finding_names = dict(finding_names or {})
        self._values = patient.evidence_values()

    @property
    def initial_finding_id(self) -> str:
        return split_evidence(self.patient.initial_evidence)[0]

    def opening(self) -> str:
        """The first thing the patient says: its initial evidence as a short statement."""
        finding_id = self.initial_finding_id
        name = self.finding_names.get(finding_id)
        if name:
            return statement_from_name(name)
        ev = self.definitions.evidences.get(finding_id)
        return statement_from_question(ev.question) if ev else f"I have {finding_id}."

    def initial_observation(self) -> Observation:
        return self.answer(self.initial_finding_id).observation(source="initial")

    def answer(self, finding_id: str) -> SimAnswer:
        base, asked_value = split_evidence(finding_id)
        ev = self.definitions.evidences.get(base)
        if ev is None:
            return SimAnswer(finding_id, None, (), UNKNOWN)
        held = self._values.get(base)
        if held is None:
            return SimAnswer(finding_id, False, (), NO)
        if asked_value is not None:
            has_it = asked_value in held and not self.definitions.is_default(base, asked_value)
            return SimAnswer(finding_id, has_it, (asked_value,) if has_it else (), YES if has_it else NO)
        if ev.data_type == "B":
            return SimAnswer(finding_id, True, (), YES)
        values = tuple(v for v in held if not self.definitions.is_default(base, v))
        if not values:
            return SimAnswer(finding_id, False, (), NO)
        return SimAnswer(finding_id, True, values, _value_text(ev, values))


def _value_text(ev: EvidenceDef, values: tuple[str, ...]) -> str:
    if ev.is_scale:
        return f"Yes, {values[0]} on a scale of 0 to 10."
    return "Yes: " + ", ".join(ev.meaning(v) for v in values) + "."


def typical_answer(finding_id: str, condition_name: str, definitions: DDXPlusDefinitions) -> str:
    """A scripted patient with a whole condition rather than one sampled case: "yes" to every
    binary evidence of the condition, "don't know" to its value questions, "no" to the rest."""
    condition = definitions.condition(condition_name)
    if condition is None:
        raise KeyError(f"unknown DDXPlus condition {condition_name!r}")
    if finding_id not in condition.evidences:
        return "no"
    ev = definitions.evidences.get(finding_id)
    return "yes" if ev is None or ev.data_type == "B" else "don't know"
