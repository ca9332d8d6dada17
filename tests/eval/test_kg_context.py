"""KG-RAG: entity linking of a question to graph concepts, and the compact fact serializer."""

from __future__ import annotations

from eval.qa.kg_context import ConceptLinker, KGContext, serialize_facts
from kg.models import DiseaseConcept, DiseaseFacts, FindingLink, Treatment
from tests.fixtures.eval import DISEASES, FINDINGS, FakeGraphStore


def test_links_names_synonyms_and_plurals_longest_first() -> None:
    linker = ConceptLinker(FINDINGS, DISEASES)
    linked = linker.link(
        "She reports fevers, worsening shortness of breath and chest pain after a heart attack."
    )
    assert linked.finding_ids() == ["f_fever", "f_sob", "f_chest_pain"]  # not the generic "pain"
    assert linked.disease_ids() == ["d_mi"]
    assert linker.link("Pyrexia with DYSPNEA.").finding_ids() == ["f_fever", "f_sob"]


def test_negated_findings_are_linked_as_absent() -> None:
    linked = ConceptLinker(FINDINGS, DISEASES).link("He has a cough but denies fever or dyspnea.")
    assert linked.finding_ids(negated=False) == ["f_cough"]
    assert linked.finding_ids(negated=True) == ["f_fever", "f_sob"]


def test_demographics_from_the_vignette() -> None:
    linker = ConceptLinker(FINDINGS, DISEASES)
    linked = linker.link("A 67-year-old woman comes with cough.")
    assert (linked.age, linked.sex) == (67, "F")
    assert linker.link("A 4-year-old boy").sex == "M"
    assert linker.link("A patient with asthma").age is None


def test_no_concepts_no_facts() -> None:
    store = FakeGraphStore()
    assert KGContext(store).facts_for("What is the mechanism of action of this drug?") == ""
    assert store.evidence == [] and store.facts_asked == []


def test_facts_follow_named_diseases_then_the_graph_differential() -> None:
    store = FakeGraphStore()
    facts = KGContext(store, max_diseases=3).facts_for(
        "A 50-year-old man with asthma has fever and cough but no chest pain."
    )
    evidence = store.evidence[0]
    assert {(o.finding_id, o.present) for o in evidence.observations} == {
        ("f_fever", True),
        ("f_cough", True),
        ("f_chest_pain", False),
    }
    assert (evidence.age, evidence.sex) == (50, "M")
    assert store.facts_asked == [["d_asthma", "d_pneumonia"]]
    lines = facts.splitlines()
    assert lines[0] == "Findings in the question: Fever, Cough, Chest pain (absent)"
    assert lines[1] == "- Asthma [ICD-10 J45; is a: lung disease]"  # named disease first, store order ignored
    assert lines[2] == (
        "- Pneumonia [ICD-10 J18.9; is a: lung disease]: Cough p=0.8, Fever p=0.65; "
        "treated by Amoxicillin (disease-modifying)"
    )


def test_serializer_respects_the_character_budget() -> None:
    facts = [
        DiseaseFacts(
            disease=DiseaseConcept(id=f"d{i}", name=f"Disease {i}"),
            findings=[FindingLink(finding_id="f", finding_name="Finding", p=1.0, present=True)],
            treatments=[Treatment(drug_id="x", drug_name="Drug", kind="")],
        )
        for i in range(50)
    ]
    text = serialize_facts(facts, max_chars=200)
    assert 0 < len(text) <= 200
    assert text.splitlines()[0] == "- Disease 0: Finding p=1; treated by Drug"
    assert all(line.startswith("- Disease") for line in text.splitlines())  # whole lines only
