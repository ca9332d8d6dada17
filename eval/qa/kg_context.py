"""KG-RAG evidence: link the question's words to graph concepts and serialize related facts.

Linking is dictionary matching of normalized names and synonyms of the graph's findings and
diseases against the question (longest match first, no overlaps), with a small negation
window ("denies fever" links fever as absent). Linked findings feed the graph's own
differential; its top diseases and the directly named ones are serialized compactly:
``- Pneumonia [ICD-10 J18.9; is a: lung disease]: cough p=0.62, fever p=0.55; treated by
amoxicillin (disease-modifying)``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from assistant.text import stem, tokenize
from kg.models import DiseaseConcept, DiseaseFacts, Evidence, FindingConcept, Observation
from kg.store import GraphError, GraphStore, UnknownFindingError

log = logging.getLogger(__name__)

_NEGATION_WORDS = ("no", "not", "denies", "denied", "without", "negative", "absent", "absence", "free")
_NEGATION_WINDOW = 4  # tokens before a match
_AGE_SEX = re.compile(
    r"(\d{1,3})[- ](?:year|yr)s?[- ]old\s+(man|woman|male|female|boy|girl|gentleman|lady)", re.IGNORECASE
)
_MALE = {"man", "male", "boy", "gentleman"}
# Names that are real concepts but in exam prose are nearly always ordinary words.
_TOO_GENERIC = {"pain", "other", "normal", "history", "change", "swelling", "mass", "less", "use"}
MIN_TERM_CHARS = 4
MAX_TERM_TOKENS = 8


def tokens(text: str) -> list[str]:
    """Stemmed word tokens by the agent's own text core (names and questions alike)."""
    return [stem(t) for t in tokenize(text) if t[0].isalnum()]


_NEGATIONS = {stem(w) for w in _NEGATION_WORDS}


@dataclass(frozen=True)
class Mention:
    concept_id: str
    kind: str  # "finding" | "disease"
    surface: str
    negated: bool


@dataclass
class LinkedConcepts:
    mentions: list[Mention] = field(default_factory=list)
    age: int | None = None
    sex: str | None = None

    def finding_ids(self, *, negated: bool | None = None) -> list[str]:
        return _unique(
            m.concept_id for m in self.mentions if m.kind == "finding" and negated in (None, m.negated)
        )

    def disease_ids(self) -> list[str]:
        return _unique(m.concept_id for m in self.mentions if m.kind == "disease" and not m.negated)


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


class ConceptLinker:
    """Dictionary entity linker over the graph's finding and disease names and synonyms."""

    def __init__(self, findings: Sequence[FindingConcept], diseases: Sequence[DiseaseConcept]) -> None:
        self._terms: dict[tuple[str, ...], tuple[str, str]] = {}
        # Diseases first, so a name that is both (e.g. "anemia") links as the disease.
        for kind, concepts in (("disease", diseases), ("finding", findings)):
            for concept in concepts:
                for name in (concept.name, *concept.synonyms):
                    key = tuple(tokens(name))
                    if not key or len(key) > MAX_TERM_TOKENS:
                        continue
                    if len(" ".join(key)) < MIN_TERM_CHARS or " ".join(key) in _TOO_GENERIC:
                        continue
                    self._terms.setdefault(key, (kind, concept.id))
        self._longest = max((len(k) for k in self._terms), default=0)

    @property
    def size(self) -> int:
        return len(self._terms)

    def link(self, text: str) -> LinkedConcepts:
        words = tokens(text)
        mentions: list[Mention] = []
        i = 0
        while i < len(words):
            for n in range(min(self._longest, len(words) - i), 0, -1):
                hit = self._terms.get(tuple(words[i : i + n]))
                if hit is None:
                    continue
                window = set(words[max(0, i - _NEGATION_WINDOW) : i])
                mentions.append(
                    Mention(hit[1], hit[0], " ".join(words[i : i + n]), bool(window & _NEGATIONS))
                )
                i += n
                break
            else:
                i += 1
        linked = LinkedConcepts(mentions=mentions)
        demographics = _AGE_SEX.search(text)
        if demographics:
            age = int(demographics.group(1))
            linked.age = age if age <= 130 else None
            linked.sex = "M" if demographics.group(2).lower() in _MALE else "F"
        return linked


def _fmt_p(p: float) -> str:
    return f"{p:.2f}".rstrip("0").rstrip(".") if p < 1 else "1"


def serialize_facts(facts: Sequence[DiseaseFacts], *, max_chars: int = 1500) -> str:
    """One compact line per disease, cut at a line boundary to fit ``max_chars``."""
    lines: list[str] = []
    used = 0
    for fact in facts:
        disease = fact.disease
        tags = []
        if disease.icd10:
            tags.append("ICD-10 " + ", ".join(disease.icd10[:2]))
        if fact.parents:
            tags.append("is a: " + ", ".join(fact.parents[:2]))
        head = f"- {disease.name}" + (f" [{'; '.join(tags)}]" if tags else "")
        parts = []
        if fact.findings:
            parts.append(", ".join(f"{f.finding_name} p={_fmt_p(f.p)}" for f in fact.findings))
        if fact.treatments:
            parts.append(
                "treated by "
                + ", ".join(
                    f"{t.drug_name} ({t.kind})" if t.kind else t.drug_name for t in fact.treatments[:5]
                )
            )
        line = head + (": " + "; ".join(parts) if parts else "")
        if used + len(line) + 1 > max_chars:
            break
        lines.append(line)
        used += len(line) + 1
    return "\n".join(lines)


class KGContext:
    """Facts for one question from a GraphStore (the lexicon is read once, on first use)."""

    def __init__(
        self,
        store: GraphStore,
        *,
        max_diseases: int = 4,
        max_findings: int = 6,
        max_chars: int = 1500,
    ) -> None:
        self.store = store
        self.max_diseases = max_diseases
        self.max_findings = max_findings
        self.max_chars = max_chars
        self._linker: ConceptLinker | None = None
        self._finding_names: dict[str, str] = {}

    @property
    def linker(self) -> ConceptLinker:
        if self._linker is None:
            findings = self.store.findings()
            self._finding_names = {f.id: f.name for f in findings}
            linkable = [f for f in findings if f.value_of is None]  # not "pain location: pharynx"
            self._linker = ConceptLinker(linkable, self.store.diseases())
        return self._linker

    def related_diseases(self, linked: LinkedConcepts) -> list[str]:
        """Named diseases first, then the graph's differential for the linked findings."""
        chosen = linked.disease_ids()[: self.max_diseases]
        present = linked.finding_ids(negated=False)
        if present and len(chosen) < self.max_diseases:
            observations = [Observation(finding_id=f, present=True) for f in present]
            observations += [
                Observation(finding_id=f, present=False)
                for f in linked.finding_ids(negated=True)
                if f not in present
            ]
            sex = linked.sex if linked.sex in ("M", "F") else None
            evidence = Evidence(observations=observations, age=linked.age, sex=sex)  # type: ignore[arg-type]
            try:
                differential = self.store.differential(evidence, top_k=self.max_diseases)
            except (GraphError, UnknownFindingError) as exc:
                log.warning("KG-RAG differential failed (%s); using named diseases only", exc)
                return chosen
            for ranked in differential.diseases:
                if ranked.disease_id not in chosen:
                    chosen.append(ranked.disease_id)
        return chosen[: self.max_diseases]

    def facts_for(self, question: str) -> str:
        linked = self.linker.link(question)
        lines = []
        present = set(linked.finding_ids(negated=False))
        named = [
            self._finding_names.get(f, f) + ("" if f in present else " (absent)")
            for f in linked.finding_ids()
        ]
        if named:
            lines.append("Findings in the question: " + ", ".join(named[:12]))
        disease_ids = self.related_diseases(linked)
        if disease_ids:
            facts = self.store.disease_facts(disease_ids, max_findings=self.max_findings)
            order = {d: n for n, d in enumerate(disease_ids)}
            facts.sort(key=lambda f: order.get(f.disease.id, len(order)))
            budget = self.max_chars - sum(len(line) + 1 for line in lines)
            serialized = serialize_facts(facts, max_chars=budget)
            if serialized:
                lines.append(serialized)
        return "\n".join(lines)
