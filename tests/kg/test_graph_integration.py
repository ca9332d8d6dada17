"""The knowledge graph against the real embedded ArcadeDB Bolt server, full graph loaded."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from assistant.app import ensure_graph_current
from assistant.settings import Settings
from kg import GraphError, LoadReport, Neo4jGraphStore, UnknownFindingError, connect, load_graph
from kg.merge import build_content
from kg.models import Evidence, Observation, Sex, StopRule
from kg.scoring import entropy

pytestmark = pytest.mark.integration


def _ev(
    present: list[str], absent: tuple[str, ...] = (), age: int | None = None, sex: Sex | None = None
) -> Evidence:
    obs = [Observation(finding_id=f, present=True, source="text") for f in present]
    obs += [Observation(finding_id=f, present=False, source="answer") for f in absent]
    return Evidence(observations=obs, age=age, sex=sex)


def test_full_load_then_stats_counts(graph_store: Neo4jGraphStore, graph_load_report: LoadReport) -> None:
    content = build_content()
    stats = graph_store.stats()
    assert stats.labels["Disease"] == len(content.diseases)
    assert stats.labels["Finding"] == len(content.findings)
    assert stats.labels["Drug"] == len(content.drugs)
    assert stats.relations["HAS_FINDING"] == len(content.has_finding)
    assert stats.relations["TREATS"] == len(content.treats)
    assert stats.relations["IS_A"] == len(content.disease_is_a) + len(content.finding_is_a)
    assert stats.version == graph_load_report.version and stats.checksum == graph_load_report.checksum
    # The whole merged graph: 49 DDXPlus + SymCat conditions (some merged) + DOID classes.
    assert len(graph_store.diseases()) >= 801
    assert graph_load_report.seconds > 0  # the < 60 s target is measured by bench/kg.py


def test_load_twice_is_idempotent_and_a_stale_graph_is_refreshed(graph_store: Neo4jGraphStore) -> None:
    before = graph_store.stats()
    assert ensure_graph_current(graph_store) is None  # current: left alone
    # A graph an older medkg loaded (other checksum) is refreshed in place by the MERGE path.
    graph_store.run("MATCH (v:GraphVersion {key: 'current'}) SET v.checksum = $checksum", {"checksum": "old"})
    again = ensure_graph_current(graph_store)
    assert again is not None and not again.skipped
    after = graph_store.stats()
    assert after.labels == before.labels and after.relations == before.relations
    assert after.checksum == before.checksum
    assert load_graph(graph_store).skipped  # same version: nothing to do


def test_findings_carry_names_questions_and_values(graph_store: Neo4jGraphStore) -> None:
    fever, pain_where, hemoptysis = graph_store.findings(["E_91", "E_55", "E_45"])[:3]
    by_id = {f.id: f for f in (fever, pain_where, hemoptysis)}
    assert by_id["E_91"].name == "fever" and by_id["E_91"].question and "fever" in by_id["E_91"].question
    assert by_id["E_55"].value_type == "multi" and by_id["E_55"].allowed_values["V_123"] == "nowhere"
    assert by_id["E_45"].red_flag and by_id["E_45"].kind == "symptom"
    assert len(graph_store.findings()) == len(build_content().findings)


CASES: dict[str, tuple[list[str], tuple[str, ...], int, Sex]] = {
    "DDX:pneumonia": (["E_91", "E_201", "E_77", "E_94", "E_66", "E_220"], ("E_97",), 70, "M"),
    "DDX:pulmonary-embolism": (["E_66", "E_220", "E_45", "E_109", "E_110"], ("E_91",), 55, "F"),
    "DDX:anaphylaxis": (["E_42", "E_214", "E_194", "E_151", "E_129", "E_226"], (), 25, "F"),
    "DDX:croup": (["E_194", "E_91", "E_202", "E_219"], ("E_45",), 3, "M"),
    "DDX:gerd": (["E_173", "E_215", "E_217", "E_98", "E_70"], ("E_91",), 45, "M"),
    "DDX:myasthenia-gravis": (["E_172", "E_52", "E_65", "E_90", "E_84"], (), 35, "F"),
    "DDX:whooping-cough": (["E_203", "E_166", "E_112", "E_40"], ("E_91",), 8, "F"),
    "DDX:panic-attack": (["E_155", "E_16", "E_75", "E_111", "E_81", "E_177"], ("E_91",), 28, "F"),
}


@pytest.mark.parametrize("disease_id", sorted(CASES))
def test_hand_written_cases_rank_right_condition_in_top3(
    graph_store: Neo4jGraphStore, disease_id: str
) -> None:
    present, absent, age, sex = CASES[disease_id]
    diff = graph_store.differential(_ev(present, absent, age=age, sex=sex), top_k=3)
    assert disease_id in [d.disease_id for d in diff.diseases], [d.name for d in diff.diseases]


def test_posteriors_sum_to_one_and_evidence_is_attached(graph_store: Neo4jGraphStore) -> None:
    diff = graph_store.differential(_ev(["E_91", "E_201"], ("E_66",)), top_k=10_000)
    assert sum(d.probability for d in diff.diseases) == pytest.approx(1.0)
    top = diff.diseases[0]
    assert top.supporting and all(0 < link.p < 1 and "HAS_FINDING" in link.path for link in top.supporting)
    assert diff.entropy == pytest.approx(entropy(np.array([d.probability for d in diff.diseases])))


def test_present_raises_and_absent_lowers_odds(graph_store: Neo4jGraphStore) -> None:
    def log_odds(evidence: Evidence, a: str, b: str) -> float:
        ranked = {d.disease_id: d for d in graph_store.differential(evidence, top_k=10_000).diseases}
        return ranked[a].log_score - ranked[b].log_score

    base = _ev(["E_91", "E_201"])
    # E_77 (productive cough) is linked to pneumonia; influenza has no edge to it.
    assert log_odds(_ev(["E_91", "E_201", "E_77"]), "DDX:pneumonia", "DDX:influenza") > log_odds(
        base, "DDX:pneumonia", "DDX:influenza"
    )
    assert log_odds(_ev(["E_91", "E_201"], ("E_77",)), "DDX:pneumonia", "DDX:influenza") < log_odds(
        base, "DDX:pneumonia", "DDX:influenza"
    )


def test_red_flags_and_severe_candidates_are_reported(graph_store: Neo4jGraphStore) -> None:
    diff = graph_store.differential(_ev(["E_66", "E_45", "E_220"]), top_k=10)
    assert "E_45" in {f.id for f in diff.red_flags}
    assert any(d.severe for d in diff.diseases)


def test_next_question_has_max_gain_against_brute_force(graph_store: Neo4jGraphStore) -> None:
    evidence = _ev(["E_91", "E_201"], age=30)
    diff = graph_store.differential(evidence)
    step = graph_store.next_step(evidence, diff, StopRule(posterior_threshold=0.99, min_information_gain=0.0))
    assert step.stop_reason == "asking" and step.question is not None
    model = graph_store.model()
    post = model.posterior(evidence)
    cols = model.question_candidates(post, top_candidates=10)
    assert cols.size > 1
    h = entropy(post.probs)
    brute: dict[str, float] = {}
    for j in cols:  # plain loops, independent of the vectorized implementation
        expected_h = 0.0
        for present in (True, False):
            like = np.array([model.P[int(r), int(j)] for r in post.rows])
            like = like if present else 1.0 - like
            joint = post.probs * like
            if joint.sum() > 0:
                expected_h += joint.sum() * entropy(joint / joint.sum())
        brute[model.findings[int(j)].id] = h - expected_h
    best = max(brute, key=lambda k: brute[k])
    assert step.question.finding.id == best
    assert step.question.information_gain == pytest.approx(brute[best])
    assert step.question.finding.id not in {"E_91", "E_201"}
    assert step.question.text.endswith("?")


def test_interactive_loop_reaches_a_confident_answer(graph_store: Neo4jGraphStore) -> None:
    """Simulated croup patient: answers yes only to findings in its own list."""
    truth = {"E_194", "E_91", "E_181", "E_202", "E_219", "E_4"}
    observations = [Observation(finding_id="E_194", present=True, source="initial")]
    evidence = Evidence(observations=observations, age=3, sex="M")
    for _ in range(8):
        diff = graph_store.differential(evidence)
        step = graph_store.next_step(evidence, diff)
        if step.question is None:
            break
        fid = step.question.finding.id
        observations.append(Observation(finding_id=fid, present=fid in truth, source="answer"))
        evidence = Evidence(observations=observations, age=3, sex="M")
    top = graph_store.differential(evidence).top
    assert top is not None and top.disease_id == "DDX:croup"


def test_unknown_finding_ids_raise(graph_store: Neo4jGraphStore) -> None:
    with pytest.raises(UnknownFindingError, match="E_99999"):
        graph_store.differential(_ev(["E_91", "E_99999"]))


def test_disease_facts(graph_store: Neo4jGraphStore) -> None:
    facts = graph_store.disease_facts(
        ["DDX:pneumonia", "DDX:bronchospasm-acute-asthma-exacerbation", "no-such-id"], max_findings=5
    )
    assert [f.disease.id for f in facts] == ["DDX:pneumonia", "DDX:bronchospasm-acute-asthma-exacerbation"]
    assert 0 < len(facts[0].findings) <= 5
    assert facts[0].findings == sorted(facts[0].findings, key=lambda link: -link.p)
    assert facts[0].parents  # DOID hierarchy
    assert facts[1].treatments and all(t.kind for t in facts[1].treatments)


def test_dead_server_gives_graph_error_quickly() -> None:
    started = time.monotonic()
    with pytest.raises(GraphError, match="unreachable"):
        connect("bolt://127.0.0.1:9", "root", "x", "graph", timeout_s=5)
    assert time.monotonic() - started < 10


def test_bad_password_gives_graph_error(graph_store: Neo4jGraphStore, graph_settings: Settings) -> None:
    started = time.monotonic()
    assert graph_settings.graph.uri is not None
    with pytest.raises(GraphError):
        connect(graph_settings.graph.uri, graph_settings.graph.user, "wrong-password", "graph", timeout_s=5)
    assert time.monotonic() - started < 10


def test_probabilities_are_finite(graph_store: Neo4jGraphStore) -> None:
    diff = graph_store.differential(_ev([], ("E_91",)), top_k=5)
    assert all(math.isfinite(d.log_score) for d in diff.diseases)
