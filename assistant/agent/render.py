"""Deterministic text of the assistant's turns (markdown). The LLM never writes these parts."""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.contracts import FollowUp
from assistant.safety import DISCLAIMER, URGENT_ADVICE
from kg.models import VALUE_SEPARATOR, FindingConcept, FindingLink, RankedDisease
from retrieval.base import Passage

SUPPORTING_LINES = 3  # evidence lines per condition in the chat's differential
CONTRADICTING_LINES = 2


def follow_up_choices(finding: FindingConcept) -> list[str]:
    if finding.value_type != "binary" and finding.allowed_values:
        meanings = [m for m in finding.allowed_values.values() if m.strip().upper() not in {"NA"}]
        if all(c.isdigit() for c in finding.allowed_values):
            return [*sorted(finding.allowed_values, key=int), "Don't know"]
        return [*meanings[:30], "Don't know"]
    return ["Yes", "No", "Don't know"]


def question_message(follow_up: FollowUp) -> str:
    if follow_up.choices[:3] == ["Yes", "No", "Don't know"]:
        hint = "You can answer yes, no, or don't know."
    elif all(c.isdigit() for c in follow_up.choices[:-1]):
        lo, hi = follow_up.choices[0], follow_up.choices[-2]
        hint = f"Answer with a number from {lo} to {hi}, or don't know."
    else:
        hint = "Answer in your own words, or say don't know."
    return f"{follow_up.text}\n\n_{hint}_"


def urgent_block(reasons: Sequence[str]) -> str:
    lines = [f"{URGENT_ADVICE}, because of:"] + [f"- {r}" for r in reasons]
    return "\n".join(lines)


def graph_path(link: FindingLink, disease: RankedDisease) -> str:
    if link.path:
        return link.path
    return f"({disease.name})-[HAS_FINDING p={link.p:.2f}]->({link.finding_name})"


# --------------------------------------------------------------------------- evidence in words

# Where a link's probability comes from (FindingLink.source), as a clinician would name it.
SOURCE_LABELS = {
    "ddxplus-train-stats": "DDXPlus training statistics",
    "ddxplus-train-stats+symcat": "DDXPlus training statistics",
    "curated-values": "medkg curated table",
    "symcat": "SymCat survey",
    "symcat-capped": "SymCat survey",
    "ddxplus": "DDXPlus definition",
    "ddxplus+symcat": "DDXPlus + SymCat",
    "calibration": "calibrated on your records",
    "calibrated": "calibrated on your records",
    "leak": "not linked (rare by chance)",
    "unknown": "no data in this source",
}
# How often a finding occurs in a disease, in words (lower bounds of P(finding | disease)).
FREQUENCY_WORDS = (
    (0.75, "typical"),
    (0.4, "common"),
    (0.15, "occasional"),
    (0.05, "uncommon"),
    (0.0, "rare"),
)
_VALUE_CODE = re.compile(r"^V_\d+$")  # DDXPlus value codes: the value links carry their names


def source_label(source: str | None) -> str:
    if not source:
        return ""
    return SOURCE_LABELS.get(source, source)


def how_often(p: float) -> str:
    return next(word for bound, word in FREQUENCY_WORDS if p >= bound)


def percent(p: float) -> str:
    """A probability a reader will not take as certainty: never 0% or 100%."""
    if p >= 0.995:
        return ">99%"
    if p < 0.005:
        return "<1%"
    return f"{p:.0%}"


def finding_label(link: FindingLink) -> str:
    """The finding as the patient reported it: "fever", "no fever", "pain intensity (patient: 6)",
    "pain location: pharynx", "pain location: not palate"."""
    name = link.finding_name
    value = link.value if link.value and not _VALUE_CODE.match(link.value) else None
    if link.present:
        return f"{name} (patient: {value})" if value else name
    if ": " in name:
        head, _, tail = name.partition(": ")
        return f"{head}: not {tail}"
    return f"no {name}"


def evidence_parts(link: FindingLink, disease_name: str) -> tuple[str, str, str]:
    """(finding as reported, how often it occurs in the disease, source) in words."""
    pct, often = percent(link.p), how_often(link.p)
    if link.source == "unknown":
        how = f"no data for {disease_name} ({pct} averaged over other conditions)"
    elif link.present:
        how = f"{often} ({pct} of patients with {disease_name})"
    elif link.p >= FREQUENCY_WORDS[2][0]:
        how = f"yet {often}: {pct} of patients with {disease_name} have it"
    else:
        how = f"as expected: only {pct} of patients with {disease_name} have it"
    return finding_label(link), how, source_label(link.source)


def evidence_line(link: FindingLink, disease_name: str) -> str:
    """One evidence link as a clinician reads it (plain text, not escaped), e.g.
    "pain location: pharynx — typical (90% of patients with Viral pharyngitis) · source:
    DDXPlus training statistics". The graph path stays in ``link.path``."""
    finding, how, source = evidence_parts(link, disease_name)
    return f"{finding} — {how}" + (f" · source: {source}" if source else "")


def readable_links(links: Sequence[FindingLink]) -> list[FindingLink]:
    """The links worth a line: an answer to a multi-choice or scale question ("pain location"
    = V_20, "pain intensity" = 6) gives way to the links of its values ("pain location:
    pharynx", "pain intensity: 6") where those are listed too."""
    bases = {
        link.finding_id.partition(VALUE_SEPARATOR)[0] for link in links if VALUE_SEPARATOR in link.finding_id
    }
    return [link for link in links if not (link.value and link.finding_id in bases)]


def _evidence_lines(
    label: str, links: Sequence[FindingLink], disease: RankedDisease, limit: int
) -> list[str]:
    shown = readable_links(links)[:limit]
    if not shown:
        return []
    return [f"   - {label}:"] + [f"     - {evidence_line(link, disease.name)}" for link in shown]


def differential_block(diseases: Sequence[RankedDisease], limit: int) -> str:
    lines = ["**Possible conditions** (from the knowledge graph, most likely first):"]
    shown = list(diseases[:limit]) + [d for d in diseases[limit:] if d.cannot_exclude]
    for i, d in enumerate(shown, start=1):
        flag = " — *can be serious*" if d.severe or (d.severity is not None and d.severity <= 2) else ""
        flag += ", *cannot be excluded yet*" if d.cannot_exclude else ""
        lines.append(f"{i}. **{d.name}** — {d.probability:.0%}{flag}")
        lines += _evidence_lines("for", d.supporting, d, SUPPORTING_LINES)
        lines += _evidence_lines("against", d.contradicting, d, CONTRADICTING_LINES)
        if d.supporting:
            lines.append(f"   - graph path: `{graph_path(d.supporting[0], d)}`")
    return "\n".join(lines)


def passages_block(passages: Sequence[Passage]) -> str:
    if not passages:
        return ""
    lines = ["**Background reading**:"]
    for i, p in enumerate(passages, start=1):
        snippet = " ".join(p.text.split())[:240]
        cite = p.title or p.source or p.id
        link = f" <{p.url}>" if p.url else ""
        lines.append(f"[{i}] {snippet}… — *{cite}*{link}")
    return "\n".join(lines)


def template_summary(diseases: Sequence[RankedDisease]) -> str:
    if not diseases:
        return "I could not match your description to conditions in the knowledge graph."
    top = diseases[0]
    support = ", ".join(link.finding_name for link in top.supporting[:3])
    because = f", mainly because of: {support}" if support else ""
    return f"The most likely condition in the knowledge graph is {top.name} ({top.probability:.0%}){because}."


def next_steps(diseases: Sequence[RankedDisease], urgent: bool) -> list[str]:
    steps: list[str] = []
    if urgent:
        steps.append("Seek urgent medical care now (emergency number or emergency department).")
    top = diseases[0] if diseases else None
    if top is not None and (top.severe or (top.severity is not None and top.severity <= 2)):
        steps.append(f"See a doctor today: {top.name} needs to be confirmed or ruled out by a clinician.")
    else:
        steps.append("Book an appointment with your doctor or a pharmacist to discuss these results.")
    steps.append("Seek care sooner if your symptoms get worse or new symptoms appear.")
    if len(diseases) > 1 and diseases[0].probability < 0.8:
        steps.append("A clinician's examination or tests can tell the leading possibilities apart.")
    return steps


def final_message(
    summary: str,
    diseases: Sequence[RankedDisease],
    passages: Sequence[Passage],
    steps: Sequence[str],
    *,
    limit: int,
    notes: Sequence[str] = (),
    urgent_reasons: Sequence[str] = (),
) -> str:
    parts: list[str] = []
    if urgent_reasons:
        parts.append(urgent_block(urgent_reasons))
    parts.extend(notes)
    parts.append(summary)
    parts.append(differential_block(diseases, limit))
    block = passages_block(passages)
    if block:
        parts.append(block)
    parts.append("**Next steps**:\n" + "\n".join(f"- {s}" for s in steps))
    parts.append(f"_{DISCLAIMER}_")
    return "\n\n".join(p for p in parts if p)
