"""Unit tests of the noisy naive-Bayes posterior and the information-gain question choice."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kg.models import Evidence, FindingConcept, Observation, Sex, StopRule
from kg.scoring import MIN_AGE_ODDS, DiagnosisModel, DiseaseMeta, FindingMeta, Posterior, entropy
from kg.store import UnknownFindingError


def _finding(
    fid: str, kind: str = "symptom", parent: str | None = None, default: str | None = None
) -> FindingMeta:
    return FindingMeta(
        id=fid,
        name=f"name {fid}",
        kind=kind,
        question=None if fid == "f3" else f"Question about {fid}?",
        value_type="binary" if default is None else "categorical",
        default_value=default,
        parent=parent,
        red_flag=fid == "f2",
        concept=FindingConcept(id=fid, name=f"name {fid}", red_flag=fid == "f2"),
    )


def _model(temperature: float = 1.0) -> DiagnosisModel:
    diseases = [DiseaseMeta(id=f"d{i}", name=f"disease {i}", severity=i + 1, icd10=[]) for i in range(4)]
    findings = [_finding(f"f{j}") for j in range(5)]
    findings.append(_finding("g1", parent="f0", default="0"))
    edges = [
        ("d0", "f0", 0.9, "t"),
        ("d0", "f1", 0.6, "t"),
        ("d0", "g1", 0.7, "t"),
        ("d1", "f0", 0.5, "t"),
        ("d1", "f2", 0.8, "t"),
        ("d2", "f1", 0.7, "t"),
        ("d2", "f3", 0.4, "t"),
        ("d3", "f4", 0.9, "t"),
        ("d3", "f0", 0.2, "t"),
    ]
    return DiagnosisModel(
        diseases,
        findings,
        edges,
        age_odds={"d3": [0.0, 0.1, 1, 1, 1, 1, 3.0, 3.0]},
        sex_odds={"d1": [2.0, 0.5]},
        temperature=temperature,
    )


def test_temperature_divides_the_log_likelihoods_not_the_prior() -> None:
    """Naive Bayes double counts correlated findings; T = 2 halves each log-likelihood. The
    ranking stays; the probabilities flatten."""
    evidence = _ev(("f0", True), ("f1", False), sex="M")
    sharp, tempered = _model(1.0).posterior(evidence), _model(2.0).posterior(evidence)
    assert list(np.argsort(-sharp.probs)) == list(np.argsort(-tempered.probs))
    assert tempered.probs.max() < sharp.probs.max()
    model = _model(2.0)
    prior = model.log_prior(None, "M")[tempered.rows]
    like = {"d0": math.log(0.9) + math.log(0.4), "d1": math.log(0.5) + math.log(0.99)}
    for k, r in enumerate(tempered.rows):
        did = model.diseases[int(r)].id
        if did in like:
            assert tempered.log_scores[k] == pytest.approx(prior[k] + like[did] / 2.0)
    with pytest.raises(ValueError):
        _model(0.0)


def _ev(*obs: tuple[str, bool | None], age: int | None = None, sex: Sex | None = None) -> Evidence:
    observations = [Observation(finding_id=f, present=p, source="answer") for f, p in obs]
    return Evidence(observations=observations, age=age, sex=sex)


def _odds(model: DiagnosisModel, evidence: Evidence, a: str, b: str) -> float:
    post = model.posterior(evidence)
    idx = {model.diseases[int(r)].id: k for k, r in enumerate(post.rows)}
    return float(post.log_scores[idx[a]] - post.log_scores[idx[b]])


def test_posterior_sums_to_one_and_matches_hand_computation() -> None:
    model = _model()
    post = model.posterior(_ev(("f0", True), ("f1", False)))
    assert post.probs.sum() == pytest.approx(1.0)
    # Candidates: diseases linked to the present finding f0.
    assert {model.diseases[int(r)].id for r in post.rows} == {"d0", "d1", "d3"}
    expected = {
        "d0": math.log(0.9) + math.log(1 - 0.6),
        "d1": math.log(0.5) + math.log(1 - 0.01),
        "d3": math.log(0.2) + math.log(1 - 0.01),
    }
    norm = np.logaddexp.reduce(list(expected.values()))
    for k, r in enumerate(post.rows):
        did = model.diseases[int(r)].id
        assert post.probs[k] == pytest.approx(math.exp(expected[did] - norm))


def test_present_finding_raises_odds_and_absent_lowers() -> None:
    model = _model()
    base = _ev(("f0", True))
    with_present = _ev(("f0", True), ("f1", True))
    with_absent = _ev(("f0", True), ("f1", False))
    assert _odds(model, with_present, "d0", "d1") > _odds(model, base, "d0", "d1")
    assert _odds(model, with_absent, "d0", "d1") < _odds(model, base, "d0", "d1")


def test_dont_know_is_no_evidence() -> None:
    model = _model()
    a = model.posterior(_ev(("f0", True)))
    b = model.posterior(_ev(("f0", True), ("f1", None)))
    np.testing.assert_allclose(a.probs, b.probs)


def test_soft_evidence_sits_between_none_and_certain() -> None:
    model = _model()
    certain = _odds(model, _ev(("f0", True), ("f1", True)), "d0", "d1")
    none = _odds(model, _ev(("f0", True)), "d0", "d1")
    soft_ev = Evidence(
        observations=[
            Observation(finding_id="f0", present=True),
            Observation(finding_id="f1", present=True, confidence=0.7),
        ]
    )
    soft = _odds(model, soft_ev, "d0", "d1")
    assert none < soft < certain


def test_age_and_sex_modify_the_prior() -> None:
    model = _model()
    young = _odds(model, _ev(("f0", True), age=0), "d3", "d0")
    old = _odds(model, _ev(("f0", True), age=70), "d3", "d0")
    assert old - young == pytest.approx(math.log(3.0) - math.log(MIN_AGE_ODDS))  # odds 0 floored
    assert _odds(model, _ev(("f0", True), sex="M"), "d1", "d0") > _odds(
        model, _ev(("f0", True), sex="F"), "d1", "d0"
    )


def test_unknown_finding_raises() -> None:
    with pytest.raises(UnknownFindingError, match="nope"):
        _model().posterior(_ev(("nope", True)))


def test_categorical_default_value_means_absent_and_gate_absent_implies_details() -> None:
    model = _model()
    ev = Evidence(
        observations=[
            Observation(finding_id="f1", present=True),
            Observation(finding_id="g1", present=True, value="0"),
        ]
    )
    resolved = model.resolve(ev)
    assert model.finding_index["g1"] in {j for j, _ in resolved.absent}
    ev2 = _ev(("f1", True), ("f0", False))
    resolved2 = model.resolve(ev2)
    assert model.finding_index["g1"] in resolved2.asked  # implied by the absent gate question
    assert model.finding_index["g1"] not in {j for j, _ in resolved2.absent}  # not double counted


def _brute_force_gain(model: DiagnosisModel, evidence: Evidence, fid: str) -> float:
    post = model.posterior(evidence)
    h = entropy(post.probs)
    total = 0.0
    j = model.finding_index[fid]
    for present in (True, False):
        like = np.array([model.P[int(r), j] if present else 1 - model.P[int(r), j] for r in post.rows])
        joint = post.probs * like
        p_v = joint.sum()
        if p_v > 0:
            total += p_v * entropy(joint / p_v)
    return h - total


def test_information_gain_matches_brute_force_and_argmax_is_asked() -> None:
    model = _model()
    evidence = _ev(("f0", True))
    post = model.posterior(evidence)
    cols = model.question_candidates(post, top_candidates=10)
    gains = model.information_gain(post, cols)
    brute = [_brute_force_gain(model, evidence, model.findings[int(j)].id) for j in cols]
    np.testing.assert_allclose(gains, brute, atol=1e-12)
    diff = model.differential(evidence)
    step = model.next_step(evidence, diff, StopRule(posterior_threshold=0.99, min_information_gain=0.0))
    assert step.stop_reason == "asking" and step.question is not None
    assert step.question.finding.id == model.findings[int(cols[int(np.argmax(brute))])].id
    assert step.question.information_gain == pytest.approx(max(brute))


def test_question_candidates_exclude_asked_and_detail_questions_without_gate() -> None:
    model = _model()
    post = model.posterior(_ev(("f1", True)))
    ids = {model.findings[int(j)].id for j in model.question_candidates(post, 10)}
    assert "f1" not in ids
    assert "g1" not in ids  # its gate question f0 is not answered yes
    post2 = model.posterior(_ev(("f1", True), ("f0", True)))
    assert "g1" in {model.findings[int(j)].id for j in model.question_candidates(post2, 10)}


def test_stop_rules() -> None:
    model = _model()
    ev = _ev(("f0", True), ("f1", True), ("f2", False), ("f4", False))
    diff = model.differential(ev)
    assert model.next_step(ev, diff, StopRule(posterior_threshold=0.5)).stop_reason == "confident"
    assert (
        model.next_step(ev, diff, StopRule(posterior_threshold=1.0, max_questions=2)).stop_reason == "budget"
    )
    assert (
        model.next_step(ev, diff, StopRule(posterior_threshold=1.0, min_information_gain=10.0)).stop_reason
        == "low_gain"
    )
    empty = DiagnosisModel([], [_finding("f0")], [])
    assert empty.next_step(Evidence(), empty.differential(Evidence())).stop_reason == "no_candidates"


def test_question_text_falls_back_to_name() -> None:
    model = _model()
    ev = _ev(("f1", True), ("f0", False))
    diff = model.differential(ev)
    step = model.next_step(
        ev, diff, StopRule(posterior_threshold=1.0, min_information_gain=0.0, top_candidates=10)
    )
    assert step.question is not None
    expected = model.findings[model.finding_index[step.question.finding.id]].question
    assert step.question.text == (expected or f"Do you have {step.question.finding.name}?")


def test_differential_carries_evidence_red_flags_and_severity() -> None:
    model = _model()
    diff = model.differential(_ev(("f0", True), ("f2", True), ("f1", False)), top_k=10)
    assert sum(d.probability for d in diff.diseases) == pytest.approx(1.0)
    d1 = next(d for d in diff.diseases if d.disease_id == "d1")
    assert {link.finding_id for link in d1.supporting} == {"f0", "f2"}
    assert all(link.path.startswith("(:Disease") for link in d1.supporting)
    d0 = next(d for d in diff.diseases if d.disease_id == "d0")
    assert {link.finding_id for link in d0.contradicting} >= {
        "f1",
        "f2",
    }  # absent linked + unexplained present
    assert [f.id for f in diff.red_flags] == ["f2"]
    assert d0.severe and not next(d for d in diff.diseases if d.disease_id == "d3").severe


def _two_vocabulary_model() -> DiagnosisModel:
    """d0/d1 told apart equally well by a DDXPlus finding and a SymCat-only one."""
    diseases = [DiseaseMeta(id=f"d{i}", name=f"disease {i}", severity=None, icd10=[]) for i in range(2)]
    findings = [_finding("a0"), _finding("ddx"), _finding("sym"), _finding("sym2")]
    findings[1].sources = ("ddxplus",)
    findings[2].sources = findings[3].sources = ("symcat",)
    edges = [("d0", "a0", 0.9, "t"), ("d1", "a0", 0.9, "t")]
    edges += [("d0", f, 0.8, "t") for f in ("ddx", "sym", "sym2")]
    edges += [("d1", f, 0.2, "t") for f in ("ddx", "sym", "sym2")]
    return DiagnosisModel(diseases, findings, edges, catalogue_prior=False, temperature=1.0)


def test_answerability_learns_which_vocabulary_the_patient_can_answer() -> None:
    model = _two_vocabulary_model()
    cols = np.array([model.finding_index[f] for f in ("ddx", "sym2")])
    # Before any answer both vocabularies are equally answerable.
    assert model.answerability(_ev(("a0", True)), cols).tolist() == [0.5, 0.5]
    # A "don't know" to a SymCat-only question lowers SymCat (1/3), leaves DDXPlus at 1/2...
    after = _ev(("a0", True), ("sym", None))
    assert model.answerability(after, cols).tolist() == pytest.approx([0.5, 1 / 3])
    # ...so the next question goes to the equally informative DDXPlus finding.
    step = model.next_step(after, model.differential(after), StopRule(posterior_threshold=0.99))
    assert step.question is not None and step.question.finding.id == "ddx"
    # A patient who answers SymCat questions keeps being asked them.
    answered = _ev(("a0", True), ("sym", False))
    assert model.answerability(answered, cols).tolist() == pytest.approx([0.5, 2 / 3])
    # Findings without a vocabulary (hand-built models) always count as answerable.
    assert _model().answerability(_ev(("f0", None)), np.array([0, 1])).tolist() == [1.0, 1.0]


def _valued_model(with_value_links: bool = True) -> DiagnosisModel:
    """d0 and d1 both have pain at the same location rate; only the location tells them apart."""
    diseases = [DiseaseMeta(id=f"d{i}", name=f"disease {i}", severity=None, icd10=[]) for i in range(3)]
    loc = FindingMeta(
        id="loc",
        name="pain location",
        kind="symptom",
        question="Where is the pain?",
        value_type="multi",
        default_value="none",
        parent="pain",
        red_flag=False,
        concept=FindingConcept(id="loc", name="pain location", value_type="multi"),
    )
    values = [
        FindingMeta(
            id=f"loc_@_{v}",
            name=f"pain location: {v}",
            kind="symptom",
            question=None,
            value_type="binary",
            default_value=None,
            parent="pain",
            red_flag=False,
            concept=FindingConcept(id=f"loc_@_{v}", name=f"pain location: {v}", value_of="loc"),
        )
        for v in ("a", "b", "c")
    ]
    findings = [_finding("pain"), _finding("x"), loc, *values]
    edges = [(d, f, 0.9, "t") for d in ("d0", "d1") for f in ("pain", "loc")] + [("d2", "x", 0.9, "t")]
    if with_value_links:
        edges += [("d0", "loc_@_a", 0.85, "t"), ("d1", "loc_@_b", 0.85, "t")]
    return DiagnosisModel(diseases, findings, edges, catalogue_prior=False, temperature=1.0)


def _loc(*values: str, present: bool = True) -> list[Observation]:
    return [Observation(finding_id="loc", present=present, value=v, source="answer") for v in values]


def test_listed_values_are_present_and_the_others_absent() -> None:
    model = _valued_model()
    pain = Observation(finding_id="pain", present=True, source="initial")
    resolved = model.resolve(Evidence(observations=[pain, *_loc("a")]))
    col = model.finding_index
    assert col["loc_@_a"] in resolved.present_cols and col["loc"] in resolved.present_cols
    assert {j for j, _ in resolved.absent} == {col["loc_@_b"], col["loc_@_c"]}
    # Pain "nowhere" (the default): location absent, its values implied, not counted.
    nowhere = model.resolve(Evidence(observations=[pain, *_loc("none")]))
    assert {j for j, _ in nowhere.absent} == {col["loc"]}
    assert {col["loc_@_a"], col["loc_@_b"], col["loc_@_c"]} <= nowhere.asked
    # "Is the pain at b? yes": the location is known present, other values stay unknown.
    single = model.resolve(Evidence(observations=[pain, Observation(finding_id="loc_@_b", present=True)]))
    assert col["loc"] in single.present_cols and col["loc"] in single.asked
    assert not single.absent


def test_value_answers_separate_what_presence_cannot() -> None:
    model = _valued_model()
    pain = Observation(finding_id="pain", present=True, source="initial")
    before = model.posterior(Evidence(observations=[pain]))
    assert before.probs.max() < 0.6  # d0 and d1 tie
    after = model.differential(Evidence(observations=[pain, *_loc("b")]))
    assert after.diseases[0].disease_id == "d1" and after.diseases[0].probability > 0.9
    # The location question is worth about one bit (ln 2) through its values, ~0 through presence.
    post = model.posterior(Evidence(observations=[pain]))
    cols = np.array([model.finding_index["loc"]])
    assert model._presence_gain(post, cols)[0] < 0.01
    assert model.information_gain(post, cols)[0] == pytest.approx(_exact_value_gain(model, post), abs=0.08)
    assert _exact_value_gain(model, post) > 0.5
    step = model.next_step(Evidence(observations=[pain]), model.differential(Evidence(observations=[pain])))
    assert step.question is not None and step.question.finding.id == "loc"


def _exact_value_gain(model: DiagnosisModel, post: Posterior) -> float:
    """Enumerate every answer to the location question (absent, or present with any value set)."""
    j = model.finding_index["loc"]
    values = [model.finding_index[f"loc_@_{v}"] for v in ("a", "b", "c")]
    outcomes: list[tuple[bool, tuple[bool, ...]]] = [(False, ())]
    outcomes += [(True, tuple(bool(m >> k & 1) for k in range(3))) for m in range(8)]
    expected_h = 0.0
    for present, named in outcomes:
        generate = np.ones(post.rows.size)
        score = np.ones(post.rows.size)
        for r, i in enumerate(post.rows):
            p_base = model.P[i, j]
            if not present:
                generate[r] = score[r] = 1 - p_base
                continue
            generate[r] = score[r] = p_base
            for v, x in zip(values, named, strict=True):
                q = min(model.P[i, v] / p_base, 1.0)
                generate[r] *= q if x else 1 - q
                score[r] *= model.P[i, v] if x else 1 - model.P[i, v]
        p_outcome = float((post.probs * generate).sum())
        if p_outcome > 0:
            after = post.probs * score
            expected_h += p_outcome * entropy(after / after.sum())
    return post.entropy - expected_h


def test_value_findings_without_links_change_nothing() -> None:
    """Shipped graphs hold value findings without links (calibration adds them): inert."""
    plain, valued = _valued_model(with_value_links=False), _valued_model()
    evidence = Evidence(
        observations=[Observation(finding_id="pain", present=True, source="initial"), *_loc("a", "c")]
    )
    plain_diff = plain.differential(evidence)
    assert plain_diff.diseases[0].probability == pytest.approx(plain_diff.diseases[1].probability)
    assert all(link.finding_id != "loc_@_a" for d in plain_diff.diseases for link in d.contradicting)
    assert valued.differential(evidence).diseases[0].disease_id == "d0"


def test_severe_conditions_that_cannot_be_excluded_stay_on_the_list() -> None:
    """d0 and d1 are severe (severity 1-2); asked for the top 1 only, a severe candidate still at
    >= 1% is kept and flagged, a mild one is not."""
    model = _model()
    evidence = _ev(("f0", True))
    full = model.differential(evidence, top_k=10).diseases
    short = model.differential(evidence, top_k=1).diseases
    assert short[0].disease_id == full[0].disease_id
    kept = {d.disease_id for d in short[1:]}
    expected = {d.disease_id for d in full[1:] if d.severe and d.probability >= 0.01}
    assert kept == expected and kept, [(d.disease_id, d.severity, d.probability) for d in full]
    assert all(d.cannot_exclude for d in short[1:])
    assert not any(d.cannot_exclude for d in full if not d.severe)
