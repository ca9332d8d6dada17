"""Learn HAS_FINDING probabilities from patient records (e.g. DDXPlus's training split).

The shipped links carry defaults (DDXPlus gives no probabilities) or survey percentages
(SymCat). Records of diagnosed patients give P(finding | disease) directly; each estimate is
shrunk toward the link's shipped value, counted as ``strength`` pseudo-patients:

    p = (k + strength * p0) / (n + strength)

with n patients of the disease and k of them showing the finding; p0 is the shipped p, or the
leak where the graph has no link. A finding seen with a disease it had no link to gets a new
edge (source "calibration"). Links of a disease without records are left alone, as are
unlinked pairs never seen together (they keep the leak).

The calibrated p replaces the edge's p (the shipped one is kept in ``p_prior``, so calibrating
again starts from it) and the graph version gets a ``+cal.<hash>`` suffix, so every store
rebuilds its scoring matrix. ``load_graph(store, force=True)`` restores the shipped graph.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from kg import queries as q
from kg.loader import CypherRunner, run_batched
from kg.scoring import leak_for

DEFAULT_STRENGTH = 5.0
# Calibrated p stays inside (0, 1): one record never makes a finding certain or impossible.
P_LOW, P_HIGH = 0.005, 0.99


class ConditionCounts(BaseModel):
    """How many patients had the disease and how many of them showed each finding."""

    disease_id: str
    patients: int = Field(ge=0)
    findings: dict[str, int] = Field(default_factory=dict)


class CalibratedLink(BaseModel):
    disease_id: str
    finding_id: str
    p: float
    p_prior: float
    patients: int
    new: bool  # no HAS_FINDING edge before


class CalibrationReport(BaseModel):
    label: str
    version: str
    patients: int
    diseases: int
    updated: int
    created: int
    strength: float


def records_fingerprint(path: Path | str) -> str:
    """SHA-256 (first 16 hex) of a records file's bytes, kept in the calibration label so that an
    evaluation can refuse the very records the graph learned from."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def calibration_label(path: Path | str, patients: int) -> str:
    return f"{Path(path).name} sha256:{records_fingerprint(path)}: {patients} patients"


def calibrated_on(label: str | None, path: Path | str) -> bool:
    """True when the graph's calibration label names this very file (by content, not name)."""
    return bool(label) and f"sha256:{records_fingerprint(path)}" in str(label)


def estimate_links(
    counts: Sequence[ConditionCounts],
    priors: Mapping[tuple[str, str], float],
    leaks: Mapping[str, float],
    strength: float = DEFAULT_STRENGTH,
) -> list[CalibratedLink]:
    """Shrunk estimates for every linked or observed (disease, finding) pair of the counted diseases.

    ``priors[(disease, finding)]`` is the shipped p of each existing link; ``leaks[finding]``
    the p of a pair without a link. Findings absent from ``leaks`` are unknown to the graph and
    skipped.
    """
    if strength < 0:
        raise ValueError("strength must be >= 0")
    linked: dict[str, list[str]] = {}
    for disease_id, finding_id in priors:
        linked.setdefault(disease_id, []).append(finding_id)
    links: list[CalibratedLink] = []
    for count in counts:
        if count.patients <= 0:
            continue
        finding_ids = set(linked.get(count.disease_id, [])) | {
            f for f, k in count.findings.items() if k > 0 and f in leaks
        }
        for finding_id in sorted(finding_ids):
            prior = priors.get((count.disease_id, finding_id))
            p0 = prior if prior is not None else leaks[finding_id]
            k = min(count.findings.get(finding_id, 0), count.patients)
            p = (k + strength * p0) / (count.patients + strength)
            links.append(
                CalibratedLink(
                    disease_id=count.disease_id,
                    finding_id=finding_id,
                    p=min(max(p, P_LOW), P_HIGH),
                    p_prior=p0,
                    patients=count.patients,
                    new=prior is None,
                )
            )
    return links


def calibrate_graph(
    store: CypherRunner,
    counts: Sequence[ConditionCounts],
    *,
    label: str,
    strength: float = DEFAULT_STRENGTH,
) -> CalibrationReport:
    """Write calibrated probabilities for the counted diseases into the graph."""
    disease_ids = sorted({c.disease_id for c in counts if c.patients > 0})
    known = {row["id"] for row in store.run(q.DISEASES_BY_ID, {"ids": disease_ids})}
    missing = sorted(set(disease_ids) - known)
    if missing:
        raise ValueError(f"diseases not in the graph: {', '.join(missing[:10])}")
    priors = {
        (row["d"], row["f"]): float(row["p_prior"] if row["p_prior"] is not None else row["p"])
        for row in store.run(q.CALIBRATION_PRIORS, {"ids": disease_ids})
    }
    leaks = {row["id"]: leak_for(row["kind"]) for row in store.run(q.FINDING_KINDS)}
    links = estimate_links(counts, priors, leaks, strength)
    rows: list[dict[str, Any]] = [
        {"d": link.disease_id, "f": link.finding_id, "p": link.p, "p_prior": link.p_prior, "n": link.patients}
        for link in links
    ]
    run_batched(
        store, q.CALIBRATE_HAS_FINDING, [r for r, link in zip(rows, links, strict=True) if not link.new]
    )
    run_batched(
        store, q.CREATE_CALIBRATED_HAS_FINDING, [r for r, link in zip(rows, links, strict=True) if link.new]
    )

    current = store.run(q.VERSION)
    base = (
        str(current[0]["version"]).split("+cal.")[0]
        if current and current[0].get("version")
        else "unversioned"
    )
    digest = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:8]
    version = f"{base}+cal.{digest}"
    store.run(q.SET_CALIBRATION, {"version": version, "label": label})
    return CalibrationReport(
        label=label,
        version=version,
        patients=sum(c.patients for c in counts),
        diseases=len(disease_ids),
        updated=sum(1 for link in links if not link.new),
        created=sum(1 for link in links if link.new),
        strength=strength,
    )
