"""Resumable runs: one JSONL line per finished (model, prompt, mode, suite, item).

The key holds the model, the prompt's name and version, the mode, the suite, the item id and
a short digest of the generation settings (max_tokens, passages k), so a changed prompt or
setting never reuses stale answers. LLM failures are never written, so a resumed run retries
them. Appends are serialized by a lock and flushed per line: a killed run loses at most the
requests in flight.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from pydantic import BaseModel, ValidationError

log = logging.getLogger(__name__)


class ItemResult(BaseModel):
    key: str
    model: str
    prompt: str
    prompt_version: str
    mode: str
    suite: str
    item_id: str
    answer: str
    prediction: str | None
    method: str
    correct: bool
    output: str
    n_options: int
    latency_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0


def cache_key(
    *, model: str, prompt: str, prompt_version: str, mode: str, suite: str, item_id: str, config: str
) -> str:
    return "|".join((model, f"{prompt}@v{prompt_version}", mode, suite, config, item_id))


class ResultCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._results: dict[str, ItemResult] = {}
        if path.is_file():
            self._load()

    def _load(self) -> None:
        bad = 0
        with self.path.open(encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    result = ItemResult.model_validate_json(line)
                except (ValidationError, json.JSONDecodeError):
                    bad += 1  # a line cut short by a killed run
                    continue
                self._results[result.key] = result
        if bad:
            log.warning("%s: ignored %d unreadable lines", self.path, bad)

    def __len__(self) -> int:
        return len(self._results)

    def __contains__(self, key: str) -> bool:
        return key in self._results

    def get(self, key: str) -> ItemResult | None:
        return self._results.get(key)

    def put(self, result: ItemResult) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(result.model_dump_json() + "\n")
                fh.flush()
            self._results[result.key] = result
