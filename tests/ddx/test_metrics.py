"""DDXPlus metrics on hand-computed examples."""

from __future__ import annotations

import pytest

from eval.ddx.metrics import Outcome, bootstrap_interval, differential_scores, gtpa_at_k, summarize

RANKING = (("a", 0.5), ("b", 0.3), ("c", 0.15), ("d", 0.04), ("e", 0.005))


def test_gtpa_at_k() -> None:
    assert gtpa_at_k(RANKING, "a", 1)
    assert not gtpa_at_k(RANKING, "b", 1) and gtpa_at_k(RANKING, "b", 3)
    assert not gtpa_at_k(RANKING, "e", 3) and gtpa_at_k(RANKING, "e", 5)
    assert not gtpa_at_k(RANKING, None, 5)
    assert not gtpa_at_k((), "a", 5)


def test_differential_scores_by_hand() -> None:
    # Predicted at p >= 0.01: {a, b, c, d}; reference {a, c, x}: 2 hits.
    recall, precision, f1 = differential_scores(RANKING, frozenset({"a", "c", "x"}), cutoff=0.01)
    assert recall == pytest.approx(2 / 3)
    assert precision == pytest.approx(2 / 4)
    assert f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    # A higher cut-off shrinks the predicted set to {a, b}.
    assert differential_scores(RANKING, frozenset({"a", "c", "x"}), cutoff=0.2) == pytest.approx(
        (1 / 3, 1 / 2, 0.4)
    )
    assert differential_scores((), frozenset({"a"})) == (0.0, 0.0, 0.0)


def _outcome(pid: str, cond: str, truth: str, ranking: tuple[tuple[str, float], ...], q: int) -> Outcome:
    return Outcome(pid, cond, truth, frozenset({truth}), ranking, q)


def test_summary_by_hand() -> None:
    outcomes = [
        _outcome("1", "A", "a", RANKING, 2),  # top-1
        _outcome("2", "B", "b", RANKING, 4),  # top-3
        _outcome("3", "B", "e", RANKING, 6),  # top-5
        _outcome("4", "C", "z", RANKING, 8),  # miss
        Outcome("5", "C", "a", frozenset({"a"}), (), 0, error="boom"),  # an error counts as a miss
    ]
    s = summarize("p", outcomes)
    assert (s.n, s.errors) == (5, 1)
    assert (s.top1, s.top3, s.top5) == (pytest.approx(0.2), pytest.approx(0.4), pytest.approx(0.6))
    assert s.top1_se == pytest.approx((0.2 * 0.8 / 5) ** 0.5)
    assert s.mean_questions == pytest.approx(4.0) and s.median_questions == 4
    assert s.per_condition["B"].n == 2 and s.per_condition["B"].top1 == 0 and s.per_condition["B"].top3 == 0.5
    # DDR: patients 1, 2 hit (their truth is in the predicted set at p >= 0.01), 3, 4, 5 not.
    assert s.ddr == pytest.approx(2 / 5)
    assert s.ddp == pytest.approx((1 / 4 + 1 / 4) / 5)
    low, high = s.top1_ci95
    assert 0.0 <= low <= 0.2 <= high <= 1.0


def test_bootstrap_is_seeded_and_degenerate_cases() -> None:
    values = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    assert bootstrap_interval(values, seed=3) == bootstrap_interval(values, seed=3)
    assert bootstrap_interval([1.0] * 10) == (1.0, 1.0)
    assert bootstrap_interval([]) == (0.0, 0.0)
