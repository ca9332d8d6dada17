"""The phrase index that keeps generated text within the graph's candidates."""

from __future__ import annotations

from assistant.safety import DiseaseNameIndex
from kg.models import DiseaseConcept

DISEASES = [
    DiseaseConcept(id="acute", name="Acute rhinosinusitis", synonyms=["rhinosinusitis", "sinusitis"]),
    DiseaseConcept(id="chronic", name="Chronic rhinosinusitis", synonyms=["chronic sinusitis"]),
    DiseaseConcept(id="cold", name="Common cold"),
]


def test_the_longest_phrase_wins() -> None:
    """ "chronic rhinosinusitis" names the chronic one, not also the disease whose synonym is
    the shorter "rhinosinusitis" inside it (a summary naming a candidate was refused for that)."""
    index = DiseaseNameIndex(DISEASES)
    assert index.mentioned("It may be chronic rhinosinusitis.") == {"chronic"}
    assert index.mentioned("Chronic sinusitis or a common cold") == {"chronic", "cold"}
    assert index.mentioned("rhinosinusitis, then chronic rhinosinusitis") == {"acute", "chronic"}
    assert index.mentioned("no disease named here") == set()
