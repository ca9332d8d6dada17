"""Retries with exponential backoff, for the failures that a second try can fix.

Only transient failures are retried: the server could not be reached (still starting, a
restart, a dropped connection), it is overloaded (429) or it failed internally (5xx). A read
timeout is not retried: the server is alive but slow, and trying again would multiply the wait
the caller asked to bound. Client errors (4xx) are never retried: the same request fails again.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

R = TypeVar("R")

log = logging.getLogger(__name__)


class RetryableError(Exception):
    """Wraps a transient failure; ``final`` is what the caller sees when retries run out."""

    def __init__(self, final: Exception, retry_after_s: float | None = None) -> None:
        super().__init__(str(final))
        self.final = final
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 2
    base_delay_s: float = 0.25
    max_delay_s: float = 8.0
    # +-fraction of random spread, so that many clients do not retry in lockstep.
    jitter: float = 0.1

    def delay_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Wait before retry number ``attempt`` (0-based); a server's Retry-After wins, capped."""
        if retry_after_s is not None and retry_after_s >= 0:
            return min(retry_after_s, self.max_delay_s)
        delay = min(self.base_delay_s * (2**attempt), self.max_delay_s)
        spread = delay * self.jitter
        return max(0.0, delay + random.uniform(-spread, spread))


def call_with_retries(
    call: Callable[[], R],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> R:
    """Run ``call``; on ``RetryableError`` wait and try again, at most ``policy.max_retries`` times."""
    attempt = 0
    while True:
        try:
            return call()
        except RetryableError as error:
            if attempt >= policy.max_retries:
                raise error.final from error.final.__cause__
            delay = policy.delay_s(attempt, error.retry_after_s)
            log.warning("LLM request failed (%s); retry %d in %.2fs", error.final, attempt + 1, delay)
            sleep(delay)
            attempt += 1
