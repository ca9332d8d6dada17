"""The scoring model built straight from the shipped sources, without a graph server.

Same matrix as ``Neo4jGraphStore.model()`` builds from a loaded graph; used by tests and
benchmarks that study the scoring itself.
"""

from __future__ import annotations

from functools import cache

from kg.merge import PACKS, build_content
from kg.models import FindingConcept
from kg.scoring import DiagnosisModel, DiseaseMeta, FindingMeta


@cache
def offline_model(packs: tuple[str, ...] = PACKS) -> DiagnosisModel:
    content = build_content(packs)
    findings = [
        FindingMeta(
            id=f.id,
            name=f.name,
            kind=f.kind,
            question=f.question,
            value_type=f.value_type,
            default_value=f.default_value,
            parent=f.parent,
            red_flag=f.red_flag,
            sources=tuple(f.sources),
            same_as=tuple(f.same_as),
            concept=FindingConcept(
                id=f.id,
                name=f.name,
                synonyms=f.synonyms,
                kind=f.kind,  # type: ignore[arg-type]
                question=f.question,
                value_type=f.value_type,  # type: ignore[arg-type]
                allowed_values=dict(zip(f.value_codes, f.value_names, strict=False)),
                red_flag=f.red_flag,
                sources=f.sources,
                value_of=f.value_of,
            ),
        )
        for f in sorted(content.findings.values(), key=lambda r: r.id)
    ]
    rankable = sorted((d for d in content.diseases.values() if d.rankable), key=lambda r: r.id)
    return DiagnosisModel(
        [
            DiseaseMeta(
                id=d.id,
                name=d.name,
                severity=d.severity,
                icd10=d.icd10,
                sources=tuple(d.sources),
                prior=d.prior,
            )
            for d in rankable
        ],
        findings,
        ((e["d"], e["f"], float(e["p"]), str(e["source"])) for e in content.has_finding),
        age_odds={d.id: d.age_odds for d in rankable},
        sex_odds={d.id: d.sex_odds for d in rankable},
    )
