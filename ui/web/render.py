"""Pure rendering of consultation results for the web UI (HTML/Markdown strings).

Everything taken from the model, the graph or the patient is escaped: names and passages
come from data files and an LLM, and must never become markup.
"""

from __future__ import annotations

from html import escape

from assistant.agent.render import evidence_parts, graph_path, readable_links
from assistant.contracts import FollowUp, TurnResult
from kg.models import FindingLink, RankedDisease

MAX_BARS = 8
MAX_LINKS = 5  # candidates with evidence shown (plus serious ones that cannot be excluded)
FOR_LINES = 4  # evidence lines for / against each candidate
AGAINST_LINES = 3
PASSAGE_CHARS = 280
CANNOT_EXCLUDE = "cannot be excluded yet"


def _shown(differential: list[RankedDisease], limit: int) -> list[RankedDisease]:
    """The first ``limit`` candidates, plus any serious one that cannot be excluded yet."""
    return list(differential[:limit]) + [d for d in differential[limit:] if d.cannot_exclude]


def _flags(disease: RankedDisease) -> list[str]:
    flags = ["serious"] if disease.severe else []
    return [*flags, CANNOT_EXCLUDE] if disease.cannot_exclude else flags


def differential_html(differential: list[RankedDisease]) -> str:
    """A bar list: one row per candidate, bar width = posterior probability; serious
    conditions in red and labelled, "cannot be excluded yet" where the kg says so."""
    if not differential:
        return '<div id="ddx-empty" class="ddx-empty">No differential yet: describe the symptoms.</div>'
    rows = []
    shown = _shown(differential, MAX_BARS)
    for rank, disease in enumerate(shown, start=1):
        pct = max(0.0, min(1.0, disease.probability)) * 100
        severe = " ddx-severe" if disease.severe else ""
        flags = _flags(disease)
        flag = f'<span class="ddx-flag">{escape(" · ".join(flags))}</span>' if flags else ""
        rows.append(
            f'<div class="ddx-row{severe}" data-rank="{rank}" data-disease="{escape(disease.disease_id)}"'
            f' data-probability="{disease.probability:.4f}"'
            f' data-cannot-exclude="{str(disease.cannot_exclude).lower()}">'
            f'<span class="ddx-label"><span class="ddx-name" title="{escape(disease.name)}">'
            f"{escape(disease.name)}</span>{flag}</span>"
            f'<span class="ddx-track"><span class="ddx-bar" style="width:{pct:.1f}%"></span></span>'
            f'<span class="ddx-pct">{pct:.1f}%</span></div>'
        )
    legend = (
        '<div class="ddx-legend"><span class="ddx-swatch"></span>red: a serious condition</div>'
        if any(d.severe for d in shown)
        else ""
    )
    return '<div class="ddx-chart">' + "".join(rows) + legend + "</div>"


def _link_items(links: list[FindingLink], disease: RankedDisease, limit: int) -> str:
    items = []
    for link in readable_links(links)[:limit]:
        finding, how, source = evidence_parts(link, disease.name)
        source_html = f' <span class="ev-source">· source: {escape(source)}</span>' if source else ""
        items.append(
            f'<li title="{escape(link.path)}"><span class="ev-finding">{escape(finding)}</span>'
            f' — <span class="ev-how">{escape(how)}</span>{source_html}</li>'
        )
    return "".join(items)


def _disease_evidence(disease: RankedDisease) -> str:
    flags = "".join(f' <span class="ev-flag">{escape(flag)}</span>' for flag in _flags(disease))
    parts = [
        f'<div class="ev-head"><strong>{escape(disease.name)}</strong>'
        f' <span class="ev-prob">{disease.probability:.0%}</span>{flags}</div>'
    ]
    supporting = _link_items(disease.supporting, disease, FOR_LINES)
    contradicting = _link_items(disease.contradicting, disease, AGAINST_LINES)
    if supporting:
        parts.append(f'<div class="ev-group">For</div><ul class="ev-for">{supporting}</ul>')
    if contradicting:
        parts.append(f'<div class="ev-group">Against</div><ul class="ev-against">{contradicting}</ul>')
    if not supporting and not contradicting:
        parts.append('<div class="ev-none">Ranked on prior and demographics only.</div>')
    links = [*disease.supporting[:MAX_LINKS], *disease.contradicting[:MAX_LINKS]]
    paths = [graph_path(link, disease) for link in links]
    if paths:
        codes = "".join(f"<li><code>{escape(path)}</code></li>" for path in paths)
        summary = f"<summary>Graph paths ({len(paths)})</summary>"
        parts.append(f'<details class="ev-paths">{summary}<ul>{codes}</ul></details>')
    return (
        f'<section class="ev-disease" data-disease="{escape(disease.disease_id)}">{"".join(parts)}</section>'
    )


def evidence_html(result: TurnResult | None) -> str:
    """For and against each candidate in words (finding, how often it occurs in the disease,
    source), the graph paths one click away; then image findings and cited passages."""
    if result is None or (not result.differential and not result.passages and not result.image_findings):
        return '<div class="ev-empty">Evidence appears here once the assistant has a differential.</div>'
    parts = [_disease_evidence(disease) for disease in _shown(result.differential, MAX_LINKS)]
    if result.image_findings:
        found = "".join(f"<li>{escape(f.label)}: {f.probability:.0%}</li>" for f in result.image_findings)
        parts.append(
            f'<section class="ev-images"><div class="ev-head"><strong>Image findings</strong></div>'
            f"<ul>{found}</ul></section>"
        )
    if result.passages:
        items: list[str] = []
        for passage in result.passages:
            title = escape(passage.title or passage.source or passage.id)
            url = passage.url or ""
            link = (
                f'<a href="{escape(url)}" target="_blank" rel="noopener noreferrer">{title}</a>'
                if url.startswith(("http://", "https://"))
                else title
            )
            snippet = escape(passage.text[:PASSAGE_CHARS]) + (
                "…" if len(passage.text) > PASSAGE_CHARS else ""
            )
            items.append(f"<li>{link} — {snippet}</li>")
        parts.append(
            f'<section class="ev-sources"><div class="ev-head"><strong>Sources</strong></div>'
            f"<ol>{''.join(items)}</ol></section>"
        )
    return '<div class="evidence">' + "".join(parts) + "</div>"


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
    """The turn's message, with the next steps and the disclaimer unless it already says them
    (the consultation's final answer does)."""
    text = result.message.strip()
    if result.next_steps and "**Next steps**" not in text:
        text += "\n\n**Next steps**\n" + "\n".join(f"- {step}" for step in result.next_steps)
    if result.disclaimer and result.status in ("answered", "urgent") and result.disclaimer not in text:
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
.ddx-label { display: flex; flex-direction: column; min-width: 0; }
.ddx-name { font-size: 0.9em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.ddx-flag { font-size: 0.75em; color: #b91c1c; font-weight: 600; }
.ddx-track { background: var(--neutral-200, #e5e7eb); border-radius: 4px; height: 14px; display: block; }
.ddx-bar { background: var(--color-accent, #2563eb); border-radius: 4px; height: 14px; display: block; }
.ddx-severe .ddx-bar, .ddx-swatch { background: #dc2626; }
.ddx-swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
.ddx-legend { font-size: 0.75em; color: var(--body-text-color-subdued, #6b7280); margin-top: 4px; }
.ddx-pct { font-variant-numeric: tabular-nums; text-align: right; font-size: 0.85em; }
.ddx-empty, .ev-empty { color: var(--body-text-color-subdued, #6b7280); font-style: italic; }
.evidence { display: flex; flex-direction: column; gap: 12px; font-size: 0.9em; line-height: 1.4; }
.evidence ul, .evidence ol { margin: 2px 0 0 0; padding-left: 1.2em; }
.evidence li { margin: 2px 0; }
.ev-prob { font-variant-numeric: tabular-nums; color: var(--body-text-color-subdued, #6b7280); }
.ev-flag { font-size: 0.8em; color: #b91c1c; font-weight: 600; margin-left: 4px; }
.ev-group { font-size: 0.85em; font-weight: 600; color: var(--body-text-color-subdued, #6b7280);
  margin-top: 4px; }
.ev-finding { font-weight: 600; }
.ev-source { color: var(--body-text-color-subdued, #6b7280); font-size: 0.9em; }
.ev-paths { margin-top: 4px; font-size: 0.85em; color: var(--body-text-color-subdued, #6b7280); }
.ev-paths summary { cursor: pointer; }
.ev-paths code { font-size: 0.9em; word-break: break-all; }
.urgent-banner { background: #fee2e2; border: 2px solid #dc2626; color: #7f1d1d; padding: 10px 14px;
  border-radius: 8px; }
"""
