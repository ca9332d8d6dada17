"""A plain noisy-naive-Bayes + greedy information-gain baseline, independent of kg/scoring.py.

It pulls the disease-finding p table from the graph once (``diseases()`` + ``disease_facts()``),
then works in memory with numpy: uniform priors (no age/sex modifiers), one fixed leak for
findings not linked to a disease, binary findings only (a value is reduced to present/absent).
The question is the unasked finding, linked to one of the current top candidates, with the
largest expected information gain H(D) - sum_v P(v) H(D | v).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from kg.store import GraphStore

DEFAULT_LEAK = 0.01
P_FLOOR, P_CEIL = 1e-3, 0.99  # keep logs finite for p = 0 or 1 links
FACTS_BATCH = 100
MAX_FINDINGS_PER_DISEASE = 100_000


def entropy(probabilities: np.ndarray) -> float:
    p = probabilities[probabilities > 0]
    return float(-(p * np.log(p)).sum())


def _row_entropy(matrix: np.ndarray) -> np.ndarray:
    safe = np.where(matrix > 0, matrix, 1.0)
    return np.asarray(-(matrix * np.log(safe)).sum(axis=0))


@dataclass
class NaiveBayesTable:
    disease_ids: list[str]
    finding_ids: list[str]
    p: np.ndarray  # (diseases, findings): P(finding | disease), the leak where not linked
    linked: np.ndarray  # (diseases, findings) bool

    @classmethod
    def from_links(
        cls, links: Mapping[str, Mapping[str, float]], leak: float = DEFAULT_LEAK
    ) -> NaiveBayesTable:
        """``links[disease_id][finding_id] = p``."""
        disease_ids = sorted(links)
        finding_ids = sorted({f for row in links.values() for f in row})
        column = {f: j for j, f in enumerate(finding_ids)}
        p = np.full((len(disease_ids), len(finding_ids)), leak, dtype=np.float64)
        linked = np.zeros_like(p, dtype=bool)
        for i, d in enumerate(disease_ids):
            for f, value in links[d].items():
                p[i, column[f]] = min(max(float(value), P_FLOOR), P_CEIL)
                linked[i, column[f]] = True
        return cls(disease_ids, finding_ids, p, linked)

    @classmethod
    def from_graph(cls, store: GraphStore, leak: float = DEFAULT_LEAK) -> NaiveBayesTable:
        disease_ids = [d.id for d in store.diseases()]
        links: dict[str, dict[str, float]] = {d: {} for d in disease_ids}
        for start in range(0, len(disease_ids), FACTS_BATCH):
            batch = disease_ids[start : start + FACTS_BATCH]
            for facts in store.disease_facts(batch, max_findings=MAX_FINDINGS_PER_DISEASE):
                row = links.setdefault(facts.disease.id, {})
                for link in facts.findings:
                    # Several edges (sources) for one pair: keep the strongest.
                    row[link.finding_id] = max(row.get(link.finding_id, 0.0), link.p)
        return cls.from_links(links, leak)

    def column(self, finding_id: str) -> int | None:
        if not hasattr(self, "_columns"):
            self._columns = {f: j for j, f in enumerate(self.finding_ids)}
        return self._columns.get(finding_id)

    def posterior(self, evidence: Mapping[str, bool]) -> np.ndarray:
        """P(D | evidence) under uniform priors; findings unknown to the table are ignored."""
        log = np.zeros(len(self.disease_ids))
        for finding_id, present in evidence.items():
            j = self.column(finding_id)
            if j is None:
                continue
            log += np.log(self.p[:, j] if present else 1.0 - self.p[:, j])
        log -= log.max()
        post = np.exp(log)
        return np.asarray(post / post.sum())

    def information_gains(self, posterior: np.ndarray, columns: Sequence[int]) -> np.ndarray:
        """Expected entropy reduction of asking each column's finding (binary answer)."""
        cols = np.asarray(columns, dtype=int)
        p = self.p[:, cols]  # (D, C)
        joint_yes = posterior[:, None] * p
        joint_no = posterior[:, None] * (1.0 - p)
        p_yes = joint_yes.sum(axis=0)
        p_no = joint_no.sum(axis=0)
        h_yes = _row_entropy(joint_yes / np.where(p_yes > 0, p_yes, 1.0))
        h_no = _row_entropy(joint_no / np.where(p_no > 0, p_no, 1.0))
        return np.asarray(entropy(posterior) - p_yes * h_yes - p_no * h_no)

    def candidate_columns(
        self, posterior: np.ndarray, asked: Iterable[str], top_candidates: int
    ) -> list[int]:
        top = np.argsort(-posterior)[:top_candidates]
        asked_cols = {c for c in (self.column(f) for f in asked) if c is not None}
        cols = np.flatnonzero(self.linked[top].any(axis=0))
        return [int(c) for c in cols if int(c) not in asked_cols]

    def best_question(
        self, posterior: np.ndarray, asked: Iterable[str], top_candidates: int = 10
    ) -> tuple[str, float] | None:
        columns = self.candidate_columns(posterior, asked, top_candidates)
        if not columns:
            return None
        gains = self.information_gains(posterior, columns)
        best = int(np.argmax(gains))
        return self.finding_ids[columns[best]], float(gains[best])

    def ranking(self, posterior: np.ndarray, top_k: int = 10) -> list[tuple[str, float]]:
        order = np.argsort(-posterior)[:top_k]
        return [(self.disease_ids[i], float(posterior[i])) for i in order]
