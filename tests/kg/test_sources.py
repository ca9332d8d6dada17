"""Source readers, the merge and the description documents, on the shipped files."""

from __future__ import annotations

from kg import description_documents, sources
from kg.loader import _hierarchy_batches, graph_checksum, run_batched
from kg.merge import build_content
from kg.neo4j_store import TransientGraphError


def test_ddxplus_evidences_have_names_questions_and_values() -> None:
    evidences = sources.ddxplus_evidences()
    assert len(evidences) == 223
    assert evidences["E_91"].name == "fever" and "fever" in evidences["E_91"].question.lower()
    assert all(ev.name and ev.question for ev in evidences.values())
    pain_where = evidences["E_55"]
    assert pain_where.data_type == "M" and pain_where.default_value == "V_123"
    assert pain_where.values["V_123"] == "nowhere" and pain_where.parent == "E_53"
    assert evidences["E_135"].values == {"V_10": "no", "V_12": "yes"}
    kinds = {ev.kind for ev in evidences.values()}
    assert kinds <= {"symptom", "sign", "history", "risk_factor"}


def test_ddxplus_conditions() -> None:
    conditions = sources.ddxplus_conditions()
    assert len(conditions) == 49
    pneumonia = conditions["Pneumonia"]
    assert pneumonia.icd10 == ["J17", "J18"] and pneumonia.severity == 3
    assert "E_91" in pneumonia.symptoms and "E_79" in pneumonia.antecedents


def test_symcat_probabilities_and_risk_odds() -> None:
    conditions = sources.symcat_conditions()
    assert len(conditions) == 801
    aaa = conditions["abdominal-aortic-aneurysm"]
    assert aaa.symptoms["sharp-abdominal-pain"] == 0.53
    assert len(aaa.age_odds) == len(sources.AGE_BANDS) and aaa.sex_odds["M"] > aaa.sex_odds["F"]
    assert all(0 <= p <= 1 for c in conditions.values() for p in c.symptoms.values())


def test_obo_and_indications() -> None:
    doid = sources.doid_terms()
    assert doid["DOID:552"].name == "pneumonia" and doid["DOID:552"].parents
    assert any(x.startswith("ICD10CM:") for x in doid["DOID:9477"].xrefs)
    assert len(sources.symp_terms()) > 800
    indications = sources.indications()
    assert len(indications) == 1388 and {i.category for i in indications} <= {"DM", "SYM", "NOT"}


def test_merge_report_and_ids() -> None:
    content = build_content()
    report = content.report
    assert report.ddxplus_conditions == 49 and report.symcat_conditions == 801
    assert report.symcat_merged_into_ddxplus_by_name >= 30  # e.g. Pneumonia, Croup, Influenza <- Flu
    assert report.symcat_symptoms_merged_by_name >= 50  # e.g. SymCat "Cough" -> E_201
    assert content.diseases["DDX:pneumonia"].symcat == "pneumonia"
    assert content.diseases["DDX:pneumonia"].doid == "DOID:552"
    assert content.diseases["DDX:influenza"].symcat == "flu"
    assert content.findings["E_201"].symcat == "cough"
    # Every SymCat condition is either merged into a DDXPlus one or present on its own.
    symcat_ids = {d.symcat for d in content.diseases.values() if d.symcat}
    assert symcat_ids == set(sources.symcat_conditions())
    # Red flags: curated DDXPlus ids and SymCat names.
    assert content.findings["E_45"].red_flag and content.findings["E_45"].red_flag_reason
    assert content.findings["SYMCAT:throat-feels-tight"].red_flag
    assert not content.findings["E_150"].red_flag
    # Edges: probabilities inside (0, 1), DDXPlus links defaulted, SymCat ones from percentages.
    assert all(0 < e["p"] < 1 for e in content.has_finding)
    assert {e["source"] for e in content.has_finding} == {
        "ddxplus",
        "symcat",
        "ddxplus+symcat",
        "ddxplus-train-stats",
        "ddxplus-train-stats+symcat",
        "curated-values",
    }


def test_hierarchy_batches_never_repeat_a_node() -> None:
    rows = [{"child": "a", "parent": "b"}, {"child": "b", "parent": "c"}, {"child": "d", "parent": "b"}]
    batches = _hierarchy_batches(rows)
    assert sorted(map(str, (r for b in batches for r in b))) == sorted(map(str, rows))
    for batch in batches:
        nodes = [n for r in batch for n in (r["child"], r["parent"])]
        assert len(nodes) == len(set(nodes))


def test_checksum_is_stable() -> None:
    assert graph_checksum() == graph_checksum()
    assert graph_checksum(("core",))[0] != "" and set(graph_checksum()[1]) == set(sources.SOURCE_FILES)


def test_description_documents() -> None:
    docs = description_documents()
    assert len(docs) > 800
    assert len({d["id"] for d in docs}) == len(docs)
    for doc in docs:
        assert set(doc) == {"id", "title", "text", "source", "url", "license"}
        assert doc["text"].strip() and doc["url"].startswith("http")
    sources_seen = {d["source"] for d in docs}
    assert {"symcat", "doid"} <= sources_seen
    assert any(d["id"] == "symcat:condition:pneumonia" for d in docs)


class _ConflictingRunner:
    """Fails any batch above 2 rows the way ArcadeDB reports write conflicts."""

    def __init__(self) -> None:
        self.applied: list[dict[str, str]] = []

    def run(self, cypher: str, params: dict[str, list[dict[str, str]]] | None = None) -> list[dict[str, str]]:
        rows = (params or {})["rows"]
        if len(rows) > 2:
            raise TransientGraphError("conflict")
        self.applied.extend(rows)
        return []

    def stats(self) -> None:
        return None


def test_conflicting_batches_are_split_until_they_pass() -> None:
    runner = _ConflictingRunner()
    rows = [{"id": str(i)} for i in range(7)]
    run_batched(runner, "UNWIND $rows AS row RETURN row", rows)  # type: ignore[arg-type]
    assert runner.applied == rows
