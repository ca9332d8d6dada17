"""BM25 (bm25s) over chunk texts, with a small English tokenizer shared by index and query."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
# bm25s's 33-word list plus question words, which dominate queries but say nothing about topic.
_STOP = frozenset(STOPWORDS_EN) | {
    "what",
    "which",
    "who",
    "whom",
    "how",
    "why",
    "when",
    "where",
    "do",
    "does",
    "did",
    "can",
    "could",
    "should",
    "would",
    "i",
    "me",
    "my",
    "you",
    "your",
    "we",
    "our",
    "has",
    "have",
    "had",
    "been",
    "am",
    "about",
}


def _light_stem(word: str) -> str:
    # Plural folding only ("symptoms" -> "symptom", "therapies" -> "therapy"); a full stemmer
    # (PyStemmer) is not a dependency, and aggressive stemming hurts medical terms.
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    return [_light_stem(t) for t in _TOKEN.findall(text.lower()) if t not in _STOP]


class BM25Index:
    """Okapi BM25 scores over a fixed list of texts (row i = chunk i)."""

    def __init__(self, model: bm25s.BM25, size: int) -> None:
        self._model = model
        self.size = size

    @classmethod
    def build(cls, texts: Sequence[str]) -> BM25Index:
        model = bm25s.BM25()
        model.index([tokenize(t) for t in texts], show_progress=False)
        return cls(model, len(texts))

    def save(self, directory: Path) -> None:
        self._model.save(str(directory), show_progress=False)
        (directory / "size.txt").write_text(str(self.size))

    @classmethod
    def load(cls, directory: Path) -> BM25Index:
        model = bm25s.BM25.load(str(directory), show_progress=False, verbosity=0)
        return cls(model, int((directory / "size.txt").read_text()))

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every row (zeros when no query term is in the vocabulary)."""
        vocab = self._model.vocab_dict
        tokens = [t for t in tokenize(query) if t in vocab]
        if not tokens:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._model.get_scores(tokens), dtype=np.float32)

    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, row ids) of the best ``k`` rows with a positive score."""
        scores = self.scores(query)
        if allowed is not None:
            masked = np.full_like(scores, 0.0)
            masked[allowed] = scores[allowed]
            scores = masked
        positive = np.flatnonzero(scores > 0)
        if positive.size == 0 or k <= 0:
            return np.empty(0, dtype=np.float32), np.empty(0, dtype=np.int64)
        top = positive[np.argpartition(-scores[positive], k - 1)[:k]] if positive.size > k else positive
        order = top[np.argsort(-scores[top], kind="stable")]
        return scores[order], order.astype(np.int64)
