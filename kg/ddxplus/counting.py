"""Count, per DDXPlus condition, how many patients show each evidence (input of kg.calibration).

Reads official-format patient records (DDXPlus's training or validation split, or generated
patients) as a stream, so the 1.0M-row training file needs memory for the counts only. An
evidence counts as shown when the patient holds it with a value other than its DDXPlus default
(travel "N" or pain radiating "nowhere" mean absent).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from kg.calibration import ConditionCounts
from kg.ddxplus.definitions import DDXPlusDefinitions
from kg.ddxplus.mapping import DiseaseMapper
from kg.ddxplus.records import VALUE_SEPARATOR, Patient


@dataclass
class CountedPatients:
    counts: list[ConditionCounts]
    patients: int = 0
    unmapped: Counter[str] = field(default_factory=Counter)  # pathologies the graph lacks


def shown_evidences(patient: Patient, definitions: DDXPlusDefinitions) -> set[str]:
    """The evidences the patient shows, and their non-default values as value-finding ids
    (``E_55_@_V_89``, ``E_56_@_7``; the graph ignores ids it does not hold)."""
    shown: set[str] = set()
    for base, values in patient.evidence_values().items():
        real = [v for v in values if not definitions.is_default(base, v)]
        if not values or real:
            shown.add(base)
            shown.update(f"{base}{VALUE_SEPARATOR}{v}" for v in real)
    return shown


def count_conditions(
    patients: Iterable[Patient], mapper: DiseaseMapper, definitions: DDXPlusDefinitions
) -> CountedPatients:
    totals: Counter[str] = Counter()
    findings: dict[str, Counter[str]] = {}
    result = CountedPatients(counts=[])
    for patient in patients:
        result.patients += 1
        disease_id = mapper.disease_id(patient.pathology)
        if disease_id is None:
            result.unmapped[patient.pathology] += 1
            continue
        totals[disease_id] += 1
        findings.setdefault(disease_id, Counter()).update(shown_evidences(patient, definitions))
    result.counts = [
        ConditionCounts(disease_id=d, patients=n, findings=dict(findings[d]))
        for d, n in sorted(totals.items())
    ]
    return result
