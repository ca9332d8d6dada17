"""The LLM's three small jobs, each validated and each with a deterministic fallback.

1. ``confirm_candidates``: which fuzzy finding candidates the patient talks about (structured
   output whose id field is an enum of the candidate ids; anything else is dropped).
2. ``phrase_question``: the graph's question in friendlier words (must stay one short question
   about the same finding, else the graph's text is used).
3. ``summarize``: two or three sentences on the differential (may name candidate diagnoses
   only, no certainty claims, else the template is used).
The patient's text only ever enters user messages, delimited and neutralised.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from assistant.llm.base import ChatMessage, ChatModel, LLMError
from assistant.safety import DiseaseNameIndex, as_data, validate_generated_text
from assistant.text import phrase_key, tokenize
from kg.models import FindingConcept, RankedDisease
from prompts import load_prompt

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 200


def _extraction_schema(ids: Sequence[str]) -> type[BaseModel]:
    allowed: Any = Literal[tuple(ids)]  # type: ignore[valid-type]
    item = create_model("MentionedFinding", id=(allowed, ...))
    # At most one item per candidate: a grammar-constrained small model otherwise repeats the
    # same id until the token budget cuts the JSON (then a repair call fails the same way).
    return create_model(
        "MentionedFindings",
        findings=(list[item], Field(default_factory=list, max_length=len(ids))),  # type: ignore[valid-type]
    )


def confirm_candidates(
    chat_model: ChatModel, text: str, candidates: Sequence[FindingConcept], *, max_tokens: int = 160
) -> set[str] | None:
    """Ids the LLM confirms among the candidates; None when the LLM failed (caller falls back)."""
    if not candidates:
        return set()
    ids = [c.id for c in candidates]
    listing = "\n".join(f"- {c.id}: {c.name}" for c in candidates)
    prompt = load_prompt("agent_extract").render(candidates=listing, text=as_data(text))
    schema = _extraction_schema(ids)
    budget = min(max_tokens, 16 + 14 * len(ids))
    try:
        result = chat_model.structured(
            [ChatMessage(role="user", content=prompt)], schema, temperature=0.0, max_tokens=budget
        )
    except (LLMError, ValueError) as exc:
        log.info("LLM candidate confirmation failed, keeping the lexicon result: %s", type(exc).__name__)
        return None
    allowed = set(ids)
    picked = {getattr(item, "id", None) for item in getattr(result, "findings", [])}
    return {i for i in picked if isinstance(i, str) and i in allowed}


_QUESTION_WORDS = {
    "do",
    "does",
    "did",
    "are",
    "is",
    "was",
    "were",
    "have",
    "has",
    "had",
    "can",
    "could",
    "would",
    "will",
    "how",
    "what",
    "where",
    "when",
    "which",
    "who",
    "why",
    "in",
    "on",
    "please",
}


def question_is_valid(
    text: str, finding: FindingConcept, graph_text: str, banned: DiseaseNameIndex | None
) -> bool:
    text = text.strip()
    if (
        not text
        or len(text) > MAX_QUESTION_CHARS
        or "\n" in text
        or text.count("?") != 1
        or not text.endswith("?")
    ):
        return False
    tokens = tokenize(text)
    if not tokens or tokens[0] not in _QUESTION_WORDS:
        return False
    # Same topic: it must share content words with the finding name or the graph's question.
    topic = set(phrase_key(finding.name)) | set(phrase_key(graph_text))
    topic -= {"you", "do", "have", "any", "are", "is", "feel", "your"}
    if topic and not (set(phrase_key(text)) & topic):
        return False
    return not (banned is not None and banned.mentioned(text))


def phrase_question(
    chat_model: ChatModel,
    finding: FindingConcept,
    graph_text: str,
    *,
    banned: DiseaseNameIndex | None = None,
    max_tokens: int = 40,
) -> str | None:
    """The LLM's rephrasing, or None when it failed validation (the caller keeps the graph text).
    One question is 15-35 tokens; the cap only cuts a runaway generation, the turn's slowest part."""
    prompt = load_prompt("agent_question").render(question=graph_text, finding=finding.name)
    try:
        response = chat_model.chat(
            [ChatMessage(role="user", content=prompt)], temperature=0.0, max_tokens=max_tokens, stop=["\n"]
        )
    except LLMError:
        return None
    text = response.text.strip().strip('"').strip()
    text = re.sub(r"^(rewritten question|question)\s*:\s*", "", text, flags=re.I)
    return text if question_is_valid(text, finding, graph_text, banned) else None


def summarize(
    chat_model: ChatModel,
    differential: Sequence[RankedDisease],
    finding_names: Sequence[str],
    complaint: str,
    *,
    names: DiseaseNameIndex | None,
    max_tokens: int = 160,
    attempts: int = 2,
) -> str | None:
    """A validated 2-3 sentence explanation, or None (the caller uses the template)."""
    if not differential:
        return None
    candidates = "\n".join(f"{i + 1}. {d.name} ({d.probability:.0%})" for i, d in enumerate(differential))
    system = load_prompt("agent_summary_system").render()
    user = load_prompt("agent_summary").render(
        candidates=candidates,
        findings=", ".join(finding_names) or "none",
        complaint=as_data(complaint)[:600],
    )
    ids = {d.disease_id for d in differential}
    cand_names = [d.name for d in differential]
    messages = [ChatMessage(role="system", content=system), ChatMessage(role="user", content=user)]
    for attempt in range(attempts):
        try:
            response = chat_model.chat(
                messages,
                temperature=0.0 if attempt == 0 else 0.3,
                max_tokens=max_tokens,
                cache_prompt=attempt == 0,
            )
        except LLMError:
            return None
        text = _trim_sentences(response.text.strip())
        ok, reason = validate_generated_text(text, ids, cand_names, names)
        if ok:
            return text
        log.info("LLM summary rejected (%s), attempt %d", reason, attempt + 1)
    return None


def _trim_sentences(text: str, max_sentences: int = 3) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    parts = re.split(r"(?<=[.!?])\s+", text)
    out = " ".join(parts[:max_sentences]).strip()
    if out and out[-1] not in ".!?":
        # Cut an unfinished sentence (max_tokens reached) rather than show half of it.
        cut = max(out.rfind("."), out.rfind("!"), out.rfind("?"))
        out = out[: cut + 1] if cut > 0 else ""
    return out
