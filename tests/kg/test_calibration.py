"""Link probabilities learned from patient records: the estimator (unit)."""

from __future__ import annotations

import pytest

from kg.calibration import P_HIGH, P_LOW, ConditionCounts, estimate_links

PRIORS = {("d1", "fever"): 0.7, ("d1", "cough"): 0.5, ("d2", "fever"): 0.2}
LEAKS = {"fever": 0.01, "cough": 0.01, "rash": 0.01, "smoking": 0.05}


def _by_pair(counts: list[ConditionCounts], strength: float = 5.0) -> dict[tuple[str, str], float]:
    return {
        (link.disease_id, link.finding_id): link.p for link in estimate_links(counts, PRIORS, LEAKS, strength)
    }


def test_estimate_shrinks_toward_the_shipped_p() -> None:
    counts = [ConditionCounts(disease_id="d1", patients=20, findings={"fever": 18})]
    p = _by_pair(counts)
    assert p[("d1", "fever")] == pytest.approx((18 + 5 * 0.7) / (20 + 5))
    # A linked finding nobody showed drops toward 0, held up by the prior.
    assert p[("d1", "cough")] == pytest.approx((0 + 5 * 0.5) / 25)
    # Strength 0: the raw frequency (clipped); large strength: the shipped p.
    assert _by_pair(counts, 0.0)[("d1", "fever")] == pytest.approx(0.9)
    assert _by_pair(counts, 1e6)[("d1", "fever")] == pytest.approx(0.7, abs=1e-3)


def test_new_links_only_for_observed_known_findings() -> None:
    counts = [ConditionCounts(disease_id="d1", patients=10, findings={"rash": 4, "unknown": 9, "smoking": 0})]
    links = {(x.disease_id, x.finding_id): x for x in estimate_links(counts, PRIORS, LEAKS)}
    rash = links[("d1", "rash")]
    assert rash.new and rash.p_prior == 0.01 and rash.p == pytest.approx((4 + 5 * 0.01) / 15)
    assert ("d1", "unknown") not in links  # not a graph finding
    assert ("d1", "smoking") not in links  # never seen and not linked: keeps the leak
    assert not links[("d1", "fever")].new
    assert all(d == "d1" for d, _ in links)  # d2 has no records: untouched


def test_bounds_and_bad_input() -> None:
    counts = [ConditionCounts(disease_id="d2", patients=1000, findings={"fever": 1000})]
    assert _by_pair(counts, 0.0)[("d2", "fever")] == P_HIGH
    assert _by_pair([ConditionCounts(disease_id="d2", patients=1000)], 0.0)[("d2", "fever")] == P_LOW
    assert estimate_links([ConditionCounts(disease_id="d1", patients=0)], PRIORS, LEAKS) == []
    with pytest.raises(ValueError):
        estimate_links([], PRIORS, LEAKS, strength=-1.0)
    with pytest.raises(ValueError):
        ConditionCounts(disease_id="d1", patients=-3)
