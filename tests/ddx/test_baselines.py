"""The plain naive-Bayes + information-gain baseline against brute force on a toy table."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from eval.ddx.baselines import NaiveBayesTable

LINKS = {
    "flu": {"fever": 0.9, "cough": 0.7, "ache": 0.6},
    "cold": {"cough": 0.6, "sneeze": 0.8},
    "migraine": {"ache": 0.9, "nausea": 0.5},
    "allergy": {"sneeze": 0.9, "itch": 0.7},
}
LEAK = 0.01


def _brute_posterior(evidence: dict[str, bool]) -> dict[str, float]:
    weights = {}
    for disease, row in LINKS.items():
        w = 1.0
        for finding, present in evidence.items():
            p = row.get(finding, LEAK)
            w *= p if present else 1 - p
        weights[disease] = w
    total = sum(weights.values())
    return {d: w / total for d, w in weights.items()}


def _brute_gain(evidence: dict[str, bool], finding: str) -> float:
    def h(post: dict[str, float]) -> float:
        return -sum(p * math.log(p) for p in post.values() if p > 0)

    prior = _brute_posterior(evidence)
    p_yes = sum(prior[d] * LINKS[d].get(finding, LEAK) for d in LINKS)
    expected = p_yes * h(_brute_posterior({**evidence, finding: True})) + (1 - p_yes) * h(
        _brute_posterior({**evidence, finding: False})
    )
    return h(prior) - expected


@pytest.mark.parametrize("evidence", [{}, {"cough": True}, {"ache": True, "fever": False}, {"sneeze": True}])
def test_posterior_and_gain_match_brute_force(evidence: dict[str, bool]) -> None:
    table = NaiveBayesTable.from_links(LINKS, leak=LEAK)
    post = table.posterior(evidence)
    expected = _brute_posterior(evidence)
    for i, disease in enumerate(table.disease_ids):
        assert post[i] == pytest.approx(expected[disease])
    findings = [f for f in table.finding_ids if f not in evidence]
    gains = table.information_gains(post, [table.column(f) for f in findings])  # type: ignore[misc]
    for finding, gain in zip(findings, gains, strict=True):
        assert gain == pytest.approx(_brute_gain(evidence, finding))
    best = table.best_question(post, evidence, top_candidates=len(LINKS))
    assert best is not None
    brute_best = max(findings, key=lambda f: _brute_gain(evidence, f))
    assert best[0] == brute_best and best[1] == pytest.approx(_brute_gain(evidence, brute_best))


def test_candidates_are_findings_of_top_diseases_not_asked() -> None:
    table = NaiveBayesTable.from_links(LINKS, leak=LEAK)
    post = table.posterior({"nausea": True, "ache": True})  # migraine far ahead, then flu
    top1 = {table.finding_ids[c] for c in table.candidate_columns(post, ["ache"], top_candidates=1)}
    assert top1 == {"nausea"}
    top2 = {table.finding_ids[c] for c in table.candidate_columns(post, ["ache", "nausea"], top_candidates=2)}
    assert top2 == {"fever", "cough"}


def test_ranking_and_unknown_findings() -> None:
    table = NaiveBayesTable.from_links(LINKS, leak=LEAK)
    post = table.posterior({"fever": True, "not-in-table": True})
    ranking = table.ranking(post, top_k=2)
    assert ranking[0][0] == "flu" and len(ranking) == 2
    assert sum(table.posterior({})) == pytest.approx(1.0)
    assert np.allclose(table.posterior({}), 1 / len(LINKS))
    # All possible answers of one question leave a proper distribution.
    for fever, cough in itertools.product([True, False], repeat=2):
        assert table.posterior({"fever": fever, "cough": cough}).sum() == pytest.approx(1.0)
