"""The value knowledge that ships: curated table, SymCat equivalences, DDXPlus training statistics,
French-release codes; and what they do to a differential (on the offline model, the same
scoring the graph store runs)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from kg import sources
from kg.ddxplus.build import main
from kg.ddxplus.release import UnknownCodeError, french_codes
from kg.merge import CURATED_VALUES, PACKS, TRAIN_STATS, build_content
from kg.models import VALUE_SEPARATOR, Evidence, Observation, StopRule
from kg.offline import offline_model
from tests.fixtures.shared_data import optional_shared

THROAT = ("V_148", "V_20", "V_21")  # pharynx, tonsil (R), tonsil (L)


def test_every_curated_row_points_at_a_real_condition_evidence_and_value() -> None:
    conditions, symcat = sources.ddxplus_conditions(), sources.symcat_conditions()
    evidences = sources.ddxplus_evidences()
    rows = sources.curated_values()
    assert len(rows) > 500
    single_choice: dict[tuple[str, str], float] = defaultdict(float)
    for row in rows:
        if row.condition.startswith("symcat:"):
            assert row.condition.removeprefix("symcat:") in symcat, row
        else:
            assert row.condition in conditions, row
        ev = evidences[row.evidence]
        assert ev.data_type in ("C", "M"), row
        for code, p in row.levels():
            assert code in ev.values and code != ev.default_value, row
            assert 0 < p <= 1, row
        assert 0 < row.p <= 1 and row.rationale.strip(), row
        if ev.data_type == "C":
            single_choice[(row.condition, row.evidence)] += row.p
    assert max(single_choice.values()) <= 1.0 + 1e-9


def test_scale_ranges_spread_their_mass_evenly() -> None:
    row = sources.CuratedValue("Cluster headache", "E_56", "7-10", 0.8, "r")
    assert row.levels() == [("7", 0.2), ("8", 0.2), ("9", 0.2), ("10", 0.2)]
    assert sources.CuratedValue("x", "E_55", "V_148", 0.5, "r").levels() == [("V_148", 0.5)]


def test_every_equivalence_names_a_symcat_symptom_and_a_ddxplus_finding() -> None:
    findings = build_content().findings
    symptoms = sources.symcat_symptoms()
    rows = sources.finding_equivalences()
    assert any(r.symcat_symptom == "sore-throat" and r.finding == f"E_55{VALUE_SEPARATOR}V_148" for r in rows)
    for row in rows:
        assert row.symcat_symptom in symptoms, row
        assert row.finding in findings, row


def test_training_statistics_ship_with_provenance_on_every_link() -> None:
    stats = sources.ddxplus_train_stats()
    assert set(stats.links) == set(sources.ddxplus_conditions())
    assert sum(stats.priors.values()) == pytest.approx(1.0, abs=0.01)
    content = build_content()
    measured = [e for e in content.has_finding if e["source"].startswith(TRAIN_STATS)]
    assert len(measured) == content.report.train_stat_links > 2000
    assert all(0 < e["p"] < 1 for e in measured)
    # p measured, or raised by the curated table where a textbook value is likelier (labelled so).
    raised = [e for e in measured if e["p_source"] != TRAIN_STATS]
    assert all(e["p_source"] == f"{TRAIN_STATS}+{CURATED_VALUES}" for e in raised)
    assert 0 < len(raised) < 0.02 * len(measured)
    assert content.diseases["DDX:viral-pharyngitis"].prior == pytest.approx(stats.priors["Viral pharyngitis"])
    # Without the pack: no measured link, no measured prior.
    bare = build_content(("core", CURATED_VALUES))
    assert not any(e["source"].startswith(TRAIN_STATS) for e in bare.has_finding)
    assert bare.diseases["DDX:viral-pharyngitis"].prior is None


def test_french_release_codes_read_as_english_ones() -> None:
    codes = french_codes()
    assert codes.evidence("fievre") == "E_91"
    assert codes.evidence("douleurxx_endroitducorps_@_pharynx") == f"E_55{VALUE_SEPARATOR}V_148"
    assert codes.evidence("douleurxx_intens_@_7") == f"E_56{VALUE_SEPARATOR}7"
    assert codes.evidence("E_55_@_V_148") == "E_55_@_V_148"  # English codes pass through
    assert codes.condition("Pharyngite virale") == "Viral pharyngitis"
    with pytest.raises(UnknownCodeError):
        codes.evidence("not_an_evidence")
    with pytest.raises(UnknownCodeError):
        codes.evidence("douleurxx_endroitducorps_@_nowhere_known")


def _throat_pain(values: tuple[str, ...] = THROAT) -> Evidence:
    return Evidence(
        observations=[
            Observation(finding_id="E_53", present=True, source="initial"),
            *(Observation(finding_id="E_55", present=True, value=v) for v in values),
        ],
        age=30,
        sex="F",
    )


@pytest.mark.parametrize("packs", [PACKS, ("core", CURATED_VALUES)], ids=["shipped", "curated-only"])
def test_throat_pain_puts_pharyngitis_above_cluster_headache(packs: tuple[str, ...]) -> None:
    """Pain in the throat, not the temple: the curated table alone, or with the statistics."""
    model = offline_model(packs)
    ranked = [d.disease_id for d in model.differential(_throat_pain(), top_k=100).diseases]
    assert "DDX:viral-pharyngitis" in ranked[:5]
    if "DDX:cluster-headache" in ranked:
        assert ranked.index("DDX:viral-pharyngitis") < ranked.index("DDX:cluster-headache")
    temple = [d.disease_id for d in model.differential(_throat_pain(("V_166", "V_167")), top_k=100).diseases]
    assert temple.index("DDX:cluster-headache") < temple.index("DDX:viral-pharyngitis")


def test_a_patients_own_words_reach_the_value_findings() -> None:
    """A patient's "sore throat" (E_97, their own words) is satisfied by pain in the pharynx or a
    tonsil: viral pharyngitis, which DDXPlus describes by pain location only, is not ruled out
    by the (capped) link DDXPlus gives it, and its evidence names the pharynx."""
    model = offline_model()
    pharyngitis = model.disease_index["DDX:viral-pharyngitis"]
    sore_throat = model.finding_index["E_97"]
    assert model.P[pharyngitis, sore_throat] <= 0.1  # DDXPlus: its patients never say "sore throat"
    words = Evidence(observations=[Observation(finding_id="E_97", present=True)], age=30, sex="F")
    resolved = model.resolve(words)
    assert resolved.any_of and not resolved.present
    ranked = model.differential(words, top_k=10).diseases
    top = next(d for d in ranked if d.disease_id == "DDX:viral-pharyngitis")
    assert any(link.finding_id.startswith("E_55_@_") for link in top.supporting)
    # Once the pain location is answered, the words are scored as themselves (no double count).
    answered = _throat_pain()
    answered.observations.append(Observation(finding_id="E_97", present=True))
    assert not model.resolve(answered).any_of


def test_value_questions_are_asked_through_their_evidence() -> None:
    """After "pain: yes" the model asks where (one question), never "pain location: pharynx?"."""
    model = offline_model()
    evidence = Evidence(observations=[Observation(finding_id="E_53", present=True, source="initial")])
    asked: list[str] = []
    for _ in range(4):
        step = model.next_step(evidence, model.differential(evidence), StopRule(posterior_threshold=0.999))
        assert step.question is not None
        asked.append(step.question.finding.id)
        evidence.observations.append(Observation(finding_id=step.question.finding.id, present=None))
    assert not any(VALUE_SEPARATOR in fid for fid in asked)
    assert "E_55" in asked


def test_shipped_statistics_rebuild_byte_for_byte_from_the_training_material(tmp_path: Path) -> None:
    """`python -m kg.ddxplus.build` is how the two shipped DDXPlus files were made (optional:
    needs the training material beside the repository)."""
    train = optional_shared("kg/ddxplus/train")
    main(["--english", str(train.parent), "--train", str(train), "--out", str(tmp_path)])
    for name in ("ddxplus_train_stats.tsv", "ddxplus_french_codes.tsv"):
        assert (tmp_path / name).read_bytes() == (sources.DATA_DIR / name).read_bytes(), name
