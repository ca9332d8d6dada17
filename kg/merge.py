"""Merge the sources into one set of graph records, and report how each concept was merged.

Identity rules (documented in docs/kg.md):
- Findings: DDXPlus evidences keep their ids (``E_91``) so official DDXPlus patients map
  directly. A SymCat symptom whose normalized name equals a DDXPlus evidence's curated name
  or synonym becomes that evidence; the others get ``SYMCAT:<slug>``. Symptom Ontology terms
  are matched by name/synonym and only contribute ids, definitions and IS_A edges.
- Diseases: a DDXPlus condition keeps the id ``DDX:<slug>``; a SymCat condition merges into it
  by normalized name/synonym, or by sharing its Disease Ontology term. DOID terms attach to a
  disease by name/synonym first, then by ICD-10 code (DOID's ICD10CM xrefs, trimming the code
  to its parent category when there is no exact match). DOID terms needed for the hierarchy
  (ancestors) and for indications become ``DOID:`` diseases without findings.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from kg import sources as src
from kg.models import VALUE_SEPARATOR
from kg.sources import normalize_name

# Default P(finding | disease) for DDXPlus links, which come without probabilities.
# DDXPlus patients carry ~10 symptom and ~3.5 antecedent evidences on average while a condition
# lists ~12.3 symptoms and ~5.8 antecedents (ratios ~0.8 and ~0.6); the counts include repeated
# multi-choice values, so the defaults are shrunk toward 0.5: 0.7 and 0.5 (see docs/kg.md).
DEFAULT_P_SYMPTOM = 0.7
DEFAULT_P_ANTECEDENT = 0.5
# Bounds keep every link informative in both directions (never log 0).
P_MIN, P_MAX = 0.01, 0.95
# A DDXPlus definition enumerates the DDXPlus evidences its condition produces. When SymCat
# links such a condition to a DDXPlus evidence the definition leaves out (SymCat "chronic
# sinusitis" reports fever in 48% of visits, likely acute flares), the survey figure is kept
# as weak evidence but capped, so it cannot overrule the definition that separates e.g.
# acute from chronic rhinosinusitis. Measured in docs/kg.md.
P_UNLISTED_DDXPLUS_EVIDENCE = 0.1
# Bump when a merge rule changes the loaded content, so stored graphs are refreshed.
RULES_VERSION = 4
# Probabilities from the DDXPlus training statistics stay inside these bounds: "never seen in
# training" is rare, not impossible, and "always" is nearly always.
STAT_P_MIN, STAT_P_MAX = 0.005, 0.99
TRAIN_STATS = "ddxplus-train-stats"
CURATED_VALUES = "curated-values"
# Where the training statistics measured a condition's evidence, a curated (textbook) value
# keeps this share of its p: DDXPlus's simulator never produces some values clinicians see, and
# a patient reporting one should not rule the condition out. Chosen on training patients and on
# generated "clinical" patients (docs/ddx.md): no loss on the first, +0.10 top-1 on the second.
CURATED_WEIGHT_WHERE_MEASURED = 0.25
# Optional knowledge packs (`build_content(packs=...)`); "core" is always loaded.
PACKS = ("core", CURATED_VALUES, TRAIN_STATS)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@dataclass
class FindingRecord:
    id: str
    name: str
    synonyms: list[str]
    kind: str
    question: str | None
    value_type: str = "binary"
    value_codes: list[str] = field(default_factory=list)
    value_names: list[str] = field(default_factory=list)
    default_value: str | None = None
    parent: str | None = None
    red_flag: bool = False
    red_flag_reason: str | None = None
    description: str | None = None
    sources: list[str] = field(default_factory=list)
    symcat: str | None = None
    symp: str | None = None
    value_of: str | None = None  # a value finding ("pain location: pharynx") of this evidence
    same_as: list[str] = field(default_factory=list)  # DDXPlus findings saying the same (curated)

    def props(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "id"}


@dataclass
class DiseaseRecord:
    id: str
    name: str
    synonyms: list[str] = field(default_factory=list)
    icd10: list[str] = field(default_factory=list)
    severity: int | None = None
    description: str | None = None
    description_source: str | None = None
    sources: list[str] = field(default_factory=list)
    ddxplus: str | None = None
    symcat: str | None = None
    doid: str | None = None
    mesh: list[str] = field(default_factory=list)
    # Risk modifiers (SymCat odds ratios): 8 age bands (kg.sources.AGE_BANDS) and [male, female].
    age_odds: list[float] = field(default_factory=list)
    sex_odds: list[float] = field(default_factory=list)
    rankable: bool = False  # has at least one HAS_FINDING edge
    prior: float | None = None  # share of the catalogue's patients (DDXPlus training split)

    def props(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "id"}


@dataclass
class MergeReport:
    findings_total: int = 0
    findings_ddxplus: int = 0
    value_findings: int = 0
    symcat_symptoms_merged_by_name: int = 0
    symcat_symptoms_unmatched: int = 0
    findings_with_symp_id: int = 0
    diseases_total: int = 0
    ddxplus_conditions: int = 0
    symcat_conditions: int = 0
    symcat_merged_into_ddxplus_by_name: int = 0
    symcat_merged_into_ddxplus_by_code: int = 0
    doid_attached_by_name: int = 0
    doid_attached_by_code: int = 0
    diseases_without_doid: int = 0
    doid_only_diseases: int = 0
    indications_loaded: int = 0
    indications_unmatched: int = 0
    train_stat_links: int = 0
    curated_value_links: int = 0
    equivalences: int = 0
    merged_pairs: list[str] = field(default_factory=list)
    unmatched_ddxplus_doid: list[str] = field(default_factory=list)


@dataclass
class GraphContent:
    findings: dict[str, FindingRecord]
    diseases: dict[str, DiseaseRecord]
    has_finding: list[dict[str, Any]]  # {d, f, p, source}
    disease_is_a: list[dict[str, str]]  # {child, parent}
    finding_is_a: list[dict[str, str]]
    detail_of: list[dict[str, str]]  # {child, parent}: DDXPlus detail question -> gate question
    drugs: list[dict[str, str]]
    treats: list[dict[str, str]]  # {drug, disease, kind}
    sources: list[dict[str, str]]
    report: MergeReport


def _name_keys(names: list[str]) -> set[str]:
    keys: set[str] = set()
    for name in names:
        key = normalize_name(name)
        if key:
            keys.add(key)
        # "Amyotrophic lateral sclerosis (ALS)" also answers to its name without the bracket.
        bare = normalize_name(re.sub(r"\([^)]*\)", " ", name))
        if bare:
            keys.add(bare)
    return keys


def _doid_indexes() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    by_name: dict[str, list[str]] = defaultdict(list)
    by_icd: dict[str, list[str]] = defaultdict(list)
    for term in src.doid_terms().values():
        for key in _name_keys([term.name, *term.synonyms]):
            by_name[key].append(term.id)
        for xref in term.xrefs:
            if xref.startswith("ICD10CM:"):
                by_icd[xref.removeprefix("ICD10CM:").upper()].append(term.id)
    return by_name, by_icd


def _match_doid_by_name(
    names: list[str], by_name: dict[str, list[str]], doid_names: dict[str, str]
) -> str | None:
    # Names in order of authority (own name first); per name prefer a DOID primary-name match.
    for name in names:
        keys = _name_keys([name])
        hits = sorted({doid for key in keys for doid in by_name.get(key, [])})
        if hits:
            primary = [doid for doid in hits if normalize_name(doid_names[doid]) in keys]
            return (primary or hits)[0]
    return None


def _match_doid_by_code(codes: list[str], names: list[str], by_icd: dict[str, list[str]]) -> str | None:
    terms = src.doid_terms()
    tokens = {t for name in names for t in normalize_name(name).split()}
    for code in codes:
        candidate = code
        while len(candidate) >= 3:
            hits = by_icd.get(candidate)
            if hits:
                return max(
                    sorted(hits),
                    key=lambda d: len(tokens & set(normalize_name(terms[d].name).split())),
                )
            candidate = candidate[:-1].rstrip(".")
    return None


def _mesh(doid: str | None) -> list[str]:
    if doid is None:
        return []
    return [x.removeprefix("MESH:") for x in src.doid_terms()[doid].xrefs if x.startswith("MESH:")]


def _doid_icd(doid: str) -> list[str]:
    return [x.removeprefix("ICD10CM:") for x in src.doid_terms()[doid].xrefs if x.startswith("ICD10CM:")]


def _value_findings(ev: src.DdxEvidence) -> list[FindingRecord]:
    """One binary finding per non-default value of a categorical / multi-choice evidence
    (pain location "pharynx", travel "West Africa"): the unit a condition's value distribution
    attaches to; 0-10 scales get one per level (intensity 7). Yes/no-like evidences (one
    non-default value) get none. They are answered through their evidence's question ("where is
    the pain?"), never asked one by one."""
    codes = [c for c in ev.values if c != ev.default_value]
    if ev.data_type == "B" or len(codes) < 2:
        return []
    label = ev.name[0].upper() + ev.name[1:]
    return [
        FindingRecord(
            id=f"{ev.id}{VALUE_SEPARATOR}{code}",
            name=f"{ev.name}: {ev.values[code]}",
            synonyms=[],
            kind=ev.kind,
            question=f"{label}: {ev.values[code]}?",
            # Askable as soon as the evidence's own gate is (pain location values after "pain: yes").
            parent=ev.parent,
            sources=["ddxplus"],
            value_of=ev.id,
        )
        for code in codes
    ]


def _build_findings(report: MergeReport) -> tuple[dict[str, FindingRecord], dict[str, str]]:
    """Findings from DDXPlus and SymCat; returns the records and SymCat slug -> finding id."""
    flags = src.red_flags()
    findings: dict[str, FindingRecord] = {}
    name_index: dict[str, str] = {}
    for ev in src.ddxplus_evidences().values():
        record = FindingRecord(
            id=ev.id,
            name=ev.name,
            synonyms=ev.synonyms,
            kind=ev.kind,
            question=ev.question or None,
            value_type={"B": "binary", "C": "categorical", "M": "multi"}[ev.data_type],
            value_codes=list(ev.values),
            value_names=list(ev.values.values()),
            default_value=ev.default_value,
            parent=ev.parent,
            sources=["ddxplus"],
        )
        findings[ev.id] = record
        for key in _name_keys([ev.name, *ev.synonyms]):
            name_index.setdefault(key, ev.id)
        for value in _value_findings(ev):
            findings[value.id] = value
    report.findings_ddxplus = sum(1 for f in findings.values() if f.value_of is None)
    report.value_findings = len(findings) - report.findings_ddxplus

    symptoms = src.symcat_symptoms()
    used = sorted({slug for cond in src.symcat_conditions().values() for slug in cond.symptoms})
    slug_to_finding: dict[str, str] = {}
    for slug in used:
        symptom = symptoms.get(slug)
        name = symptom.name if symptom else slug.replace("-", " ").capitalize()
        target = next((name_index[k] for k in sorted(_name_keys([name])) if k in name_index), None)
        if target is not None:
            record = findings[target]
            record.symcat = record.symcat or slug
            if "symcat" not in record.sources:
                record.sources.append("symcat")
            if name.lower() != record.name.lower() and name not in record.synonyms:
                record.synonyms.append(name)
            if symptom and not record.description:
                record.description = symptom.description or None
            report.symcat_symptoms_merged_by_name += 1
        else:
            target = f"SYMCAT:{slug}"
            findings[target] = FindingRecord(
                id=target,
                name=name.lower() if name[1:].islower() else name,
                synonyms=[],
                kind="symptom",
                question=None,
                description=(symptom.description or None) if symptom else None,
                sources=["symcat"],
                symcat=slug,
            )
            report.symcat_symptoms_unmatched += 1
        slug_to_finding[slug] = target

    by_name = {normalize_name(record.name): record.id for record in findings.values()}
    for key, fid in by_name.items():
        flags_reason = flags.get(fid) or next((r for n, r in flags.items() if normalize_name(n) == key), None)
        if flags_reason:
            findings[fid].red_flag = True
            findings[fid].red_flag_reason = flags_reason
    report.findings_total = len(findings)
    return findings, slug_to_finding


def _attach_symptom_ontology(findings: dict[str, FindingRecord], report: MergeReport) -> list[dict[str, str]]:
    terms = src.symp_terms()
    index: dict[str, str] = {}
    for term in terms.values():
        for key in _name_keys([term.name, *term.synonyms]):
            index.setdefault(key, term.id)
    symp_to_finding: dict[str, str] = {}
    for record in findings.values():
        keys = sorted(_name_keys([record.name, *record.synonyms]))
        primary = normalize_name(record.name)
        hit = index.get(primary) or next((index[k] for k in keys if k in index), None)
        if hit and hit not in symp_to_finding:
            record.symp = hit
            symp_to_finding[hit] = record.id
            if not record.description and terms[hit].definition:
                record.description = terms[hit].definition
    report.findings_with_symp_id = len(symp_to_finding)

    # Finding IS_A Finding where the Symptom Ontology puts one matched term under another
    # (walking up through unmatched intermediate terms).
    edges: list[dict[str, str]] = []
    for symp_id, child in symp_to_finding.items():
        seen: set[str] = set()
        frontier = list(terms[symp_id].parents)
        while frontier:
            parent = frontier.pop()
            if parent in seen or parent not in terms:
                continue
            seen.add(parent)
            if parent in symp_to_finding and symp_to_finding[parent] != child:
                edges.append({"child": child, "parent": symp_to_finding[parent]})
                continue  # nearest matched ancestor only
            frontier.extend(terms[parent].parents)
    return edges


@cache
def build_content(packs: Sequence[str] = PACKS) -> GraphContent:
    """The merged graph; ``packs`` names the optional knowledge sources to include."""
    report = MergeReport()
    train_stats = src.ddxplus_train_stats() if TRAIN_STATS in packs else None
    findings, slug_to_finding = _build_findings(report)
    finding_is_a = _attach_symptom_ontology(findings, report)
    detail_of = [  # value findings name their evidence in `value_of` instead
        {"child": r.id, "parent": r.parent}
        for r in findings.values()
        if r.parent and r.parent in findings and r.value_of is None
    ]

    doid_terms = src.doid_terms()
    doid_names = {d: t.name for d, t in doid_terms.items()}
    by_name, by_icd = _doid_indexes()
    diseases: dict[str, DiseaseRecord] = {}
    edges: dict[tuple[str, str], dict[str, Any]] = {}
    ddx_name_index: dict[str, str] = {}
    symcat_disease: dict[str, str] = {}  # SymCat slug -> disease id (its own or a merged one)
    doid_to_disease: dict[str, str] = {}
    evidences = src.ddxplus_evidences()

    for cond in src.ddxplus_conditions().values():
        did = f"DDX:{_slug(cond.key)}"
        names = [cond.name, *cond.synonyms]
        doid = _match_doid_by_name(names, by_name, doid_names)
        if doid:
            report.doid_attached_by_name += 1
        else:
            doid = _match_doid_by_code(cond.icd10, names, by_icd)
            if doid:
                report.doid_attached_by_code += 1
            else:
                report.unmatched_ddxplus_doid.append(cond.name)
        synonyms = [s for s in cond.synonyms if s.lower() != cond.name.lower()]
        if cond.name_fr:
            synonyms.append(cond.name_fr)
        diseases[did] = DiseaseRecord(
            id=did,
            name=cond.name,
            synonyms=synonyms,
            icd10=cond.icd10,
            severity=cond.severity,
            sources=["ddxplus"],
            ddxplus=cond.key,
            doid=doid,
            mesh=_mesh(doid),
        )
        if doid:
            doid_to_disease.setdefault(doid, did)
        for key in _name_keys(names):
            ddx_name_index.setdefault(key, did)
        for eid in cond.symptoms + cond.antecedents:
            antecedent = eid in cond.antecedents or evidences[eid].kind in ("history", "risk_factor")
            p = DEFAULT_P_ANTECEDENT if antecedent else DEFAULT_P_SYMPTOM
            edges[(did, eid)] = {"d": did, "f": eid, "p": p, "source": "ddxplus", "p_source": "default"}
        for fid, p in (train_stats.links.get(cond.key, {}) if train_stats else {}).items():
            if fid not in findings:
                raise ValueError(f"{TRAIN_STATS}: {cond.key!r} links unknown finding {fid!r}")
            p = min(max(p, STAT_P_MIN), STAT_P_MAX)
            edges[(did, fid)] = {"d": did, "f": fid, "p": p, "source": TRAIN_STATS, "p_source": TRAIN_STATS}
            report.train_stat_links += 1
        if train_stats and cond.key in train_stats.priors:
            diseases[did].prior = train_stats.priors[cond.key]
    report.ddxplus_conditions = len(diseases)

    for sc in src.symcat_conditions().values():
        names = [sc.name]
        doid = _match_doid_by_name(names, by_name, doid_names)
        target = next((ddx_name_index[k] for k in sorted(_name_keys(names)) if k in ddx_name_index), None)
        if target is not None:
            report.symcat_merged_into_ddxplus_by_name += 1
        elif doid and doid in doid_to_disease and doid_to_disease[doid].startswith("DDX:"):
            target = doid_to_disease[doid]
            report.symcat_merged_into_ddxplus_by_code += 1
        if target is not None and diseases[target].symcat is None:
            record = diseases[target]
            record.symcat = sc.slug
            record.sources.append("symcat")
            record.synonyms.append(sc.name) if sc.name.lower() != record.name.lower() else None
            report.merged_pairs.append(f"{record.name} <- SymCat {sc.name}")
        else:
            target = f"SYMCAT:{sc.slug}"
            if doid and doid in doid_to_disease:
                doid = None  # the DOID term already belongs to another disease
            elif doid:
                report.doid_attached_by_name += 1
            record = DiseaseRecord(id=target, name=sc.name, sources=["symcat"], symcat=sc.slug, doid=doid)
            record.mesh = _mesh(doid)
            record.icd10 = _doid_icd(doid) if doid else []
            diseases[target] = record
            if doid:
                doid_to_disease[doid] = target
        record.description = sc.description or None
        record.description_source = "symcat" if sc.description else None
        symcat_disease[sc.slug] = target
        record.age_odds = [sc.age_odds.get(band, 1.0) for band, _, _ in src.AGE_BANDS]
        record.sex_odds = [sc.sex_odds["M"], sc.sex_odds["F"]]
        for slug, p in sc.symptoms.items():
            fid = slug_to_finding[slug]
            p = min(max(p, P_MIN), P_MAX)
            existing = edges.get((target, fid))
            if existing is not None and existing["source"].startswith(TRAIN_STATS):
                existing["source"] = f"{TRAIN_STATS}+symcat"  # the measured p stands
            elif existing is not None:
                # SymCat percentages count patients naming the symptom as a reason for the
                # visit, an underestimate of P(finding | disease): keep the larger value.
                if p >= existing["p"]:
                    existing["p"], existing["p_source"] = p, "symcat"
                existing["source"] = "ddxplus+symcat"
            else:
                p_source = "symcat"
                if record.ddxplus is not None and fid in evidences and p > P_UNLISTED_DDXPLUS_EVIDENCE:
                    p, p_source = P_UNLISTED_DDXPLUS_EVIDENCE, "symcat-capped"
                edges[(target, fid)] = {
                    "d": target,
                    "f": fid,
                    "p": p,
                    "source": "symcat",
                    "p_source": p_source,
                }
    report.symcat_conditions = len(src.symcat_conditions())
    if CURATED_VALUES in packs:
        ddxplus_disease = {r.ddxplus: did for did, r in diseases.items() if r.ddxplus}
        measured = {
            (d, f.partition(VALUE_SEPARATOR)[0])
            for (d, f), e in edges.items()
            if e["source"].startswith(TRAIN_STATS)
        }
        report.curated_value_links = _add_curated_values(
            edges,
            findings,
            {**ddxplus_disease, **{f"symcat:{k}": v for k, v in symcat_disease.items()}},
            measured,
        )
        report.equivalences = _add_equivalences(findings, slug_to_finding)

    # Disease Ontology: descriptions, hierarchy (ancestors of attached terms), indications.
    for record in diseases.values():
        if record.doid and not record.description and doid_terms[record.doid].definition:
            record.description = doid_terms[record.doid].definition
            record.description_source = "doid"
        if record.doid:
            known = {s.lower() for s in [record.name, *record.synonyms]}
            record.synonyms += [s for s in doid_terms[record.doid].synonyms if s.lower() not in known][:8]
    report.diseases_without_doid = sum(1 for r in diseases.values() if not r.doid)

    needed: set[str] = set(doid_to_disease)
    indications = src.indications()
    needed |= {ind.doid for ind in indications if ind.doid in doid_terms}
    frontier = list(needed)
    while frontier:
        for parent in doid_terms[frontier.pop()].parents:
            if parent in doid_terms and parent not in needed:
                needed.add(parent)
                frontier.append(parent)
    for doid in sorted(needed):
        if doid in doid_to_disease:
            continue
        term = doid_terms[doid]
        diseases[doid] = DiseaseRecord(
            id=doid,
            name=term.name,
            synonyms=term.synonyms[:8],
            icd10=_doid_icd(doid),
            description=term.definition or None,
            description_source="doid" if term.definition else None,
            sources=["doid"],
            doid=doid,
            mesh=_mesh(doid),
        )
        doid_to_disease[doid] = doid
        report.doid_only_diseases += 1
    disease_is_a = []
    for doid in sorted(needed):
        for parent in doid_terms[doid].parents:
            if parent in doid_to_disease and doid_to_disease[parent] != doid_to_disease[doid]:
                disease_is_a.append({"child": doid_to_disease[doid], "parent": doid_to_disease[parent]})

    drugs: dict[str, dict[str, str]] = {}
    treats: list[dict[str, str]] = []
    for ind in indications:
        if ind.doid not in doid_to_disease:
            report.indications_unmatched += 1
            continue
        drugs[ind.drugbank_id] = {"id": ind.drugbank_id, "name": ind.drug}
        treats.append(
            {
                "drug": ind.drugbank_id,
                "disease": doid_to_disease[ind.doid],
                "kind": src.INDICATION_KINDS.get(ind.category, ind.category),
            }
        )
    report.indications_loaded = len(treats)

    for did, _ in edges:
        diseases[did].rankable = True
    report.diseases_total = len(diseases)
    sources = [
        {"id": key, **info, "checksum": src.source_checksums()[key]} for key, info in src.SOURCE_INFO.items()
    ]
    return GraphContent(
        findings=findings,
        diseases=diseases,
        has_finding=list(edges.values()),
        disease_is_a=disease_is_a,
        finding_is_a=finding_is_a,
        detail_of=detail_of,
        drugs=list(drugs.values()),
        treats=treats,
        sources=sources,
        report=report,
    )


def _link(edges: dict[tuple[str, str], dict[str, Any]], d: str, f: str, p: float, source: str) -> bool:
    """Add a link unless the pair is linked already; True when added. A link this same source
    added before (an evidence or gate implied by several values) keeps the largest p."""
    p = min(max(p, P_MIN), P_MAX)
    existing = edges.get((d, f))
    if existing is not None:
        if existing["source"] == source and p > existing["p"]:
            existing["p"] = p
        return False
    edges[(d, f)] = {"d": d, "f": f, "p": p, "source": source, "p_source": source}
    return True


def _add_curated_values(
    edges: dict[tuple[str, str], dict[str, Any]],
    findings: dict[str, FindingRecord],
    disease_ids: dict[str, str],
    measured: set[tuple[str, str]],
) -> int:
    """Links from value_knowledge.tsv: each value's p, plus the evidence and its gate question
    (pain location needs pain) for a condition whose source did not link them. Where the
    training statistics measured the evidence, a curated value only raises a measured p to
    CURATED_WEIGHT_WHERE_MEASURED x its curated p (or adds it at that p)."""
    added = 0
    for row in src.curated_values():
        did = disease_ids.get(row.condition)
        if did is None:
            raise ValueError(f"value_knowledge.tsv: unknown condition {row.condition!r}")
        weight = CURATED_WEIGHT_WHERE_MEASURED if (did, row.evidence) in measured else 1.0
        for code, p in row.levels():
            p *= weight
            fid = f"{row.evidence}{VALUE_SEPARATOR}{code}"
            fid = fid if fid in findings else row.evidence  # yes/no-like evidences have no value findings
            if fid not in findings:
                raise ValueError(f"value_knowledge.tsv: unknown finding {fid!r}")
            measured_link = edges.get((did, fid))
            if measured_link is not None and measured_link["source"].startswith(TRAIN_STATS):
                if p > measured_link["p"]:  # textbook values stay possible; say where p came from
                    measured_link["p"], measured_link["p_source"] = p, f"{TRAIN_STATS}+{CURATED_VALUES}"
                continue
            added += _link(edges, did, fid, p, CURATED_VALUES)
            for base in (row.evidence, findings[row.evidence].parent):
                if base and base != fid:
                    added += _link(edges, did, base, max(p, 0.5), CURATED_VALUES)
    return added


def _add_equivalences(findings: dict[str, FindingRecord], slug_to_finding: dict[str, str]) -> int:
    """Let a patient's own words reach the DDXPlus findings: "sore throat" gets ``same_as`` =
    pain in the pharynx / a tonsil, and the scorer reads "sore throat: yes" as satisfied by any
    of them (kg.scoring). Returns the number of pairs.

    Copying links instead was measured and dropped (docs/ddx.md): SymCat diseases with
    "headache" getting every head location drowned the DDXPlus conditions' own value knowledge,
    and DDXPlus's own "sore throat" question (E_97) is a different finding for its patients."""
    pairs = 0
    for row in src.finding_equivalences():
        if row.finding not in findings:
            raise ValueError(f"finding_equivalences.tsv: unknown finding {row.finding!r}")
        symptom = slug_to_finding.get(row.symcat_symptom)
        if symptom is not None and row.finding != symptom:  # unused symptoms have no finding
            findings[symptom].same_as.append(row.finding)
            pairs += 1
    return pairs
