"""Evidence links in words (assistant/agent/render.py): what the chat and the web UI show
instead of the raw graph path, which stays available beside them."""

from __future__ import annotations

from typing import Any

import pytest

from assistant.agent.render import (
    SOURCE_LABELS,
    differential_block,
    evidence_line,
    how_often,
    percent,
    readable_links,
    source_label,
)
from kg.models import FindingLink, RankedDisease

PATH = (
    "(:Disease {name: 'Viral pharyngitis'})-[:HAS_FINDING {p: 0.90, source: 'ddxplus-train-stats'}]->"
    "(:Finding {id: 'E_55_@_V_148', name: 'pain location: pharynx'})"
)


def link(name: str, p: float, present: bool = True, **kw: Any) -> FindingLink:
    return FindingLink(finding_id=kw.pop("finding_id", name), finding_name=name, p=p, present=present, **kw)


@pytest.mark.parametrize(
    ("source", "label"),
    [
        ("ddxplus-train-stats", "DDXPlus training statistics"),
        ("ddxplus-train-stats+symcat", "DDXPlus training statistics"),
        ("curated-values", "medkg curated table"),
        ("symcat", "SymCat survey"),
        ("ddxplus", "DDXPlus definition"),
        ("ddxplus+symcat", "DDXPlus + SymCat"),
        ("calibration", "calibrated on your records"),
        ("calibrated", "calibrated on your records"),
        ("leak", "not linked (rare by chance)"),
        ("unknown", "no data in this source"),
        ("some-new-pack", "some-new-pack"),  # an unmapped source is shown as it is
        (None, ""),
    ],
)
def test_sources_have_readable_names(source: str | None, label: str) -> None:
    assert source_label(source) == label


def test_every_edge_source_the_graph_writes_is_mapped() -> None:
    for source in ("ddxplus", "ddxplus+symcat", "ddxplus-train-stats", "ddxplus-train-stats+symcat"):
        assert source in SOURCE_LABELS
    for source in ("symcat", "curated-values", "calibration", "leak", "unknown"):
        assert source in SOURCE_LABELS


def test_frequency_words_and_percentages() -> None:
    assert [how_often(p) for p in (0.9, 0.5, 0.2, 0.08, 0.01)] == [
        "typical",
        "common",
        "occasional",
        "uncommon",
        "rare",
    ]
    assert (percent(0.8994), percent(0.999), percent(0.001)) == ("90%", ">99%", "<1%")


def test_the_issue_example() -> None:
    pharynx = link("pain location: pharynx", 0.8994, source="ddxplus-train-stats", path=PATH)
    assert evidence_line(pharynx, "Viral pharyngitis") == (
        "pain location: pharynx — typical (90% of patients with Viral pharyngitis)"
        " · source: DDXPlus training statistics"
    )


def test_absent_findings_scale_values_and_unlinked_findings() -> None:
    assert evidence_line(link("fever", 0.8, present=False, source="ddxplus"), "Influenza") == (
        "no fever — yet typical: 80% of patients with Influenza have it · source: DDXPlus definition"
    )
    assert evidence_line(link("pain location: palate", 0.7, present=False), "Laryngitis") == (
        "pain location: not palate — yet common: 70% of patients with Laryngitis have it"
    )
    assert evidence_line(link("rash", 0.04, present=False, source="symcat"), "Influenza").startswith(
        "no rash — as expected: only 4% of patients with Influenza have it"
    )
    assert evidence_line(link("pain intensity", 0.99, value="6"), "Laryngitis").startswith(
        "pain intensity (patient: 6) — typical (99% of patients with Laryngitis)"
    )
    assert evidence_line(link("rash", 0.01, source="leak"), "Influenza") == (
        "rash — rare (1% of patients with Influenza) · source: not linked (rare by chance)"
    )
    assert evidence_line(link("rash", 0.3, source="unknown"), "Influenza") == (
        "rash — no data for Influenza (30% averaged over other conditions) · source: no data in this source"
    )


def test_a_coded_answer_gives_way_to_its_values() -> None:
    answer = link("pain location", 0.99, finding_id="E_55", value="V_148")
    pharynx = link("pain location: pharynx", 0.9, finding_id="E_55_@_V_148")
    assert readable_links([answer, pharynx]) == [pharynx]
    assert readable_links([answer]) == [answer]  # alone, it is still evidence
    assert evidence_line(answer, "X").startswith("pain location — typical")  # the code is not shown
    scale = link("pain intensity", 0.99, finding_id="E_56", value="6")
    six = link("pain intensity: 6", 0.14, finding_id="E_56_@_6")
    assert readable_links([scale, six]) == [six]


def test_chat_differential_block_in_words_with_the_path_kept() -> None:
    pharynx = link("pain location: pharynx", 0.8994, source="ddxplus-train-stats", path=PATH)
    diseases = [
        RankedDisease(
            disease_id="vp",
            name="Viral pharyngitis",
            probability=0.7,
            log_score=0.0,
            supporting=[pharynx],
            contradicting=[link("fever", 0.49, present=False, source="symcat")],
        ),
        RankedDisease(disease_id="c", name="Cold", probability=0.2, log_score=0.0),
        RankedDisease(
            disease_id="e",
            name="Epiglottitis",
            probability=0.02,
            log_score=0.0,
            severe=True,
            cannot_exclude=True,
        ),
    ]
    block = differential_block(diseases, limit=2)
    assert "pain location: pharynx — typical (90% of patients with Viral pharyngitis)" in block
    assert "no fever — yet common: 49%" in block
    assert f"graph path: `{PATH}`" in block  # secondary, after the sentences
    assert block.index("pain location: pharynx —") < block.index("graph path")
    assert "p=0." not in block
    assert "3. **Epiglottitis** — 2% — *can be serious*, *cannot be excluded yet*" in block
