"""Accuracy with its standard error, per (suite, mode)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel

from eval.qa.cache import ItemResult


class Score(BaseModel):
    suite: str
    mode: str
    model: str
    prompt: str
    prompt_version: str
    n: int
    correct: int
    accuracy: float
    se: float  # sqrt(p(1-p)/n): binomial standard error of the accuracy
    unparseable: int  # outputs no answer could be read from (scored as wrong)
    errors: int  # requests that failed (not scored; a resumed run retries them)
    chance: float  # expected accuracy of uniform guessing over each item's options
    mean_latency_s: float
    mean_completion_tokens: float


def standard_error(p: float, n: int) -> float:
    return math.sqrt(p * (1 - p) / n) if n else 0.0


def score(
    results: Sequence[ItemResult],
    *,
    suite: str,
    mode: str,
    model: str,
    prompt: str,
    prompt_version: str,
    errors: int = 0,
) -> Score:
    n = len(results)
    correct = sum(r.correct for r in results)
    accuracy = correct / n if n else 0.0
    return Score(
        suite=suite,
        mode=mode,
        model=model,
        prompt=prompt,
        prompt_version=prompt_version,
        n=n,
        correct=correct,
        accuracy=accuracy,
        se=standard_error(accuracy, n),
        unparseable=sum(r.prediction is None for r in results),
        errors=errors,
        chance=sum(1 / r.n_options for r in results) / n if n else 0.0,
        mean_latency_s=sum(r.latency_s for r in results) / n if n else 0.0,
        mean_completion_tokens=sum(r.completion_tokens for r in results) / n if n else 0.0,
    )
