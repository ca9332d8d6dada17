"""Deterministic text of the assistant's turns (markdown). The LLM never writes these parts."""

from __future__ import annotations

from collections.abc import Sequence

from assistant.contracts import FollowUp
from assistant.safety import DISCLAIMER, URGENT_ADVICE
from kg.models import FindingConcept, FindingLink, RankedDisease
from retrieval.base import Passage


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


def _links(links: Sequence[FindingLink], limit: int = 4) -> str:
    parts = []
    for link in links[:limit]:
        value = f" = {link.value}" if link.value else ""
        parts.append(f"{link.finding_name}{value} (p={link.p:.2f})")
    return "; ".join(parts)


def differential_block(diseases: Sequence[RankedDisease], limit: int) -> str:
    lines = ["**Possible conditions** (from the knowledge graph, most likely first):"]
    shown = list(diseases[:limit]) + [d for d in diseases[limit:] if d.cannot_exclude]
    for i, d in enumerate(shown, start=1):
        flag = " — *can be serious*" if d.severe or (d.severity is not None and d.severity <= 2) else ""
        flag += ", *cannot be excluded yet*" if d.cannot_exclude else ""
        lines.append(f"{i}. **{d.name}** — {d.probability:.0%}{flag}")
        if d.supporting:
            lines.append(f"   - for: {_links(d.supporting)}")
            lines.append(f"   - graph path: `{graph_path(d.supporting[0], d)}`")
        if d.contradicting:
            lines.append(f"   - against: {_links(d.contradicting)}")
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
