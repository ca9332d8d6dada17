"""Pure rendering of consultation results for the web UI (HTML/Markdown strings).

Everything taken from the model, the graph or the patient is escaped: names and passages
come from data files and an LLM, and must never become markup.
"""

from __future__ import annotations

from html import escape

from assistant.contracts import FollowUp, TurnResult
from kg.models import FindingLink, RankedDisease

MAX_BARS = 8
MAX_LINKS = 5
PASSAGE_CHARS = 280


def differential_html(differential: list[RankedDisease]) -> str:
    """A bar list: one row per candidate, bar width = posterior probability."""
    if not differential:
        return '<div id="ddx-empty" class="ddx-empty">No differential yet: describe the symptoms.</div>'
    rows = []
    for rank, disease in enumerate(differential[:MAX_BARS], start=1):
        pct = max(0.0, min(1.0, disease.probability)) * 100
        severe = " ddx-severe" if disease.severe else ""
        rows.append(
            f'<div class="ddx-row{severe}" data-rank="{rank}" data-disease="{escape(disease.disease_id)}"'
            f' data-probability="{disease.probability:.4f}">'
            f'<span class="ddx-name">{escape(disease.name)}</span>'
            f'<span class="ddx-track"><span class="ddx-bar" style="width:{pct:.1f}%"></span></span>'
            f'<span class="ddx-pct">{pct:.1f}%</span></div>'
        )
    return '<div class="ddx-chart">' + "".join(rows) + "</div>"


def _link_line(link: FindingLink) -> str:
    state = "present" if link.present else "absent"
    path = f" — path: {_md(link.path)}" if link.path else ""
    return f"  - {_md(link.finding_name)} ({state}, p={link.p:.2f}){path}"


def evidence_markdown(result: TurnResult | None) -> str:
    if result is None or (not result.differential and not result.passages and not result.image_findings):
        return "_Evidence appears here once the assistant has a differential._"
    parts: list[str] = []
    for disease in result.differential[:MAX_LINKS]:
        parts.append(f"**{_md(disease.name)}** — {disease.probability:.0%}")
        if disease.supporting:
            parts.append("- for:")
            parts.extend(_link_line(link) for link in disease.supporting[:MAX_LINKS])
        if disease.contradicting:
            parts.append("- against:")
            parts.extend(_link_line(link) for link in disease.contradicting[:MAX_LINKS])
        if not disease.supporting and not disease.contradicting:
            parts.append("- ranked on prior and demographics only")
        parts.append("")
    if result.image_findings:
        parts.append("**Image findings**")
        parts.extend(f"- {_md(f.label)}: {f.probability:.0%}" for f in result.image_findings)
        parts.append("")
    if result.passages:
        parts.append("**Sources**")
        for index, passage in enumerate(result.passages, start=1):
            title = _md(passage.title or passage.source or passage.id)
            link = f"[{title}]({passage.url})" if passage.url and passage.url.startswith("http") else title
            snippet = _md(passage.text[:PASSAGE_CHARS]) + ("…" if len(passage.text) > PASSAGE_CHARS else "")
            parts.append(f"{index}. {link} — {snippet}")
    return "\n".join(parts).strip()


def follow_up_markdown(follow_up: FollowUp | None) -> str:
    if follow_up is None:
        return ""
    return f"**Question:** {_md(follow_up.text)}"


def urgent_html(result: TurnResult | None) -> str:
    if result is None or not result.urgent:
        return ""
    reasons = "".join(f"<li>{escape(reason)}</li>" for reason in result.urgent_reasons)
    return (
        '<div class="urgent-banner" role="alert"><strong>Seek urgent medical care now.</strong>'
        f"{'<ul>' + reasons + '</ul>' if reasons else ''}</div>"
    )


def assistant_message(result: TurnResult) -> str:
    text = result.message.strip()
    if result.next_steps:
        text += "\n\n**Next steps**\n" + "\n".join(f"- {step}" for step in result.next_steps)
    if result.disclaimer and result.status in ("answered", "urgent"):
        text += f"\n\n_{result.disclaimer}_"
    return text


def _md(text: str) -> str:
    """Text shown inside Markdown: escape HTML and the characters that would start markup."""
    escaped = escape(text, quote=False)
    for char in "\\`*_[]|#":
        escaped = escaped.replace(char, "\\" + char)
    return escaped.replace("\n", " ")


CSS = """
.ddx-chart { display: flex; flex-direction: column; gap: 6px; }
.ddx-row { display: grid; grid-template-columns: 40% 1fr 4em; align-items: center; gap: 8px; }
.ddx-name { font-size: 0.9em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.ddx-track { background: var(--neutral-200, #e5e7eb); border-radius: 4px; height: 14px; display: block; }
.ddx-bar { background: var(--color-accent, #2563eb); border-radius: 4px; height: 14px; display: block; }
.ddx-severe .ddx-bar { background: #dc2626; }
.ddx-pct { font-variant-numeric: tabular-nums; text-align: right; font-size: 0.85em; }
.ddx-empty { color: var(--body-text-color-subdued, #6b7280); font-style: italic; }
.urgent-banner { background: #fee2e2; border: 2px solid #dc2626; color: #7f1d1d; padding: 10px 14px;
  border-radius: 8px; }
"""
