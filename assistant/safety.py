"""Safety rules decided in code, never by the LLM.

- Input limits: empty, huge or absurd messages get a clear reply instead of reaching the model.
- Patient text is data: it is delimited and neutralised before it enters a prompt, and never
  placed in the system role, so "ignore your instructions" cannot change the rules.
- Urgency: red-flag findings, severe likely candidates and emergency phrases trigger
  urgent-care advice at once.
- LLM output validation: generated text may name only diagnoses from the candidate set and may
  not claim certainty; otherwise it is rejected and a deterministic template is used.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from assistant.text import phrase_key, tokenize
from assistant.untrusted import guard_untrusted, has_ignored_text, own_words
from kg.models import DiseaseConcept, FindingConcept, Observation, RankedDisease

MAX_MESSAGE_CHARS = 4000
MIN_MEANINGFUL_LETTERS = 1

DISCLAIMER = (
    "This is decision support, not a diagnosis. It can be wrong and does not replace a clinician: "
    "please see a doctor or other qualified health professional about your symptoms."
)
URGENT_ADVICE = (
    "**Seek urgent medical care now**: call your local emergency number or go to the nearest "
    "emergency department"
)


class InputRejectedError(ValueError):
    """A message that cannot be processed; the message says what to send instead."""


ALL_IGNORED_MESSAGE = (
    "Your message looked like instructions to the assistant or someone else's words, so it was "
    "ignored. Please describe your own symptoms in a few words (for example: 'fever and cough')."
)


def clean_message(text: str | None, *, allow_empty: bool = False) -> str:
    """Validate and normalise one patient message (raises InputRejectedError with a clear reason)."""
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise InputRejectedError("The message must be text.")
    text = unicodedata.normalize("NFKC", text)
    # Drop control characters (keep newlines/tabs) that can smuggle fake prompt structure.
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    text = text.strip()
    if not text:
        if allow_empty:
            return ""
        raise InputRejectedError(
            "Please describe your symptoms in a few words (for example: 'fever and cough')."
        )
    if len(text) > MAX_MESSAGE_CHARS:
        raise InputRejectedError(
            f"Your message is too long ({len(text)} characters; the limit is {MAX_MESSAGE_CHARS}). "
            "Please describe your main symptoms briefly."
        )
    if sum(ch.isalpha() for ch in text) < MIN_MEANINGFUL_LETTERS:
        raise InputRejectedError("I could not read any words in that message. Please describe your symptoms.")
    # The single entry point of patient text into the agent: whatever poses as instructions,
    # template structure or someone else's words is cut here, before extraction, red flags,
    # the transcript and every prompt (assistant/untrusted.py says what and why).
    guarded = guard_untrusted(text)
    if guarded.ignored and not any(ch.isalpha() for ch in own_words(guarded.text)):
        raise InputRejectedError(ALL_IGNORED_MESSAGE)
    return guarded.text


_ROLE_MARKERS = re.compile(
    r"(?im)^\s*(system|assistant|user|developer|tool)\s*:|<\|[^|>]*\|>|</?(system|assistant|user|im_start|im_end)>"
)


def as_data(text: str) -> str:
    """Neutralise patient text for a prompt: remove role markers and our own delimiters."""
    text = _ROLE_MARKERS.sub(" ", text)
    text = text.replace("<<<", "<").replace(">>>", ">")
    return text[:MAX_MESSAGE_CHARS]


_INJECTION = re.compile(
    r"(?i)\b(ignore|disregard|forget|override)\b.{0,40}\b(instruction|rule|prompt|above|previous|system)s?\b"
    r"|\byou are now\b|\bact as\b|\bpretend (to be|you)\b|\bsystem prompt\b|\bjailbreak\b"
    r"|\bnew instructions?\b"
)


def looks_like_injection(text: str) -> bool:
    """Only for logging/telemetry and the reply's wording; the constraints hold regardless.
    Guarded text (``clean_message``) says so by the placeholder where text was cut."""
    return bool(has_ignored_text(text) or _INJECTION.search(text) or _ROLE_MARKERS.search(text))


# --------------------------------------------------------------------------- urgency

# Phrases that call for emergency care whatever the graph says (kept short and unambiguous).
_EMERGENCY_PHRASES = {
    "suicidal thoughts or self-harm": "kill myself|suicide|suicidal|end my life|hurt myself|self harm"
    "|want to die",
    "unconsciousness or unresponsiveness": "unconscious|unresponsive|not waking up|can not wake",
    "severe breathing difficulty": "can not breathe|ca not breathe|choking|turning blue|lips are blue",
    "signs of stroke": "face drooping|slurred speech|one side of my body|sudden weakness on one side",
    "severe bleeding": "bleeding heavily|will not stop bleeding|wo not stop bleeding|vomiting blood"
    "|coughing up blood",
    "seizure": "seizure|convulsion|fitting",
    "severe allergic reaction": "throat is closing|throat closing|anaphylaxis|tongue swelling",
    "crushing chest pain": "crushing chest pain|crushing pain in my chest|elephant on my chest",
}
_EMERGENCY_KEYS = {
    reason: [tuple(tokenize(p)) for p in phrases.split("|")] for reason, phrases in _EMERGENCY_PHRASES.items()
}


def emergency_phrases(text: str) -> list[str]:
    tokens = tokenize(text)
    reasons = []
    for reason, keys in _EMERGENCY_KEYS.items():
        for key in keys:
            n = len(key)
            if any(tuple(tokens[i : i + n]) == key for i in range(len(tokens) - n + 1)):
                reasons.append(reason)
                break
    return reasons


@dataclass(frozen=True)
class UrgencyPolicy:
    # A severe (DDXPlus severity 1-2 or graph "severe") candidate this likely triggers urgent advice.
    severe_probability: float = 0.25
    severe_max_level: int = 2
    severe_top_k: int = 3


def urgent_reasons(
    observations: Sequence[Observation],
    findings: dict[str, FindingConcept],
    differential: Sequence[RankedDisease],
    texts: Iterable[str] = (),
    policy: UrgencyPolicy | None = None,
) -> list[str]:
    policy = policy or UrgencyPolicy()
    reasons: list[str] = []
    for o in observations:
        f = findings.get(o.finding_id)
        if f is not None and f.red_flag and o.present and o.confidence >= 0.5:
            reasons.append(f"red-flag finding: {f.name}")
    for d in list(differential)[: policy.severe_top_k]:
        severe = d.severe or (d.severity is not None and d.severity <= policy.severe_max_level)
        if severe and d.probability >= policy.severe_probability:
            reasons.append(f"a serious condition is possible: {d.name} ({d.probability:.0%})")
    for text in texts:
        # Guarded again (idempotent): an emergency phrase inside injected text is not the patient's.
        reasons.extend(f"you mentioned {r}" for r in emergency_phrases(guard_untrusted(text).text))
    return list(dict.fromkeys(reasons))


# --------------------------------------------------------------------------- output validation


class DiseaseNameIndex:
    """Phrase index over every disease name and synonym in the graph."""

    def __init__(self, diseases: Iterable[DiseaseConcept]) -> None:
        self.by_phrase: dict[tuple[str, ...], set[str]] = {}
        for d in diseases:
            for name in [d.name, *d.synonyms]:
                key = phrase_key(name)
                # Skip one-letter/very short keys: they would match ordinary words.
                if key and sum(len(k) for k in key) >= 4:
                    self.by_phrase.setdefault(key, set()).add(d.id)
        self.max_len = max((len(k) for k in self.by_phrase), default=1)

    def mentioned(self, text: str) -> set[str]:
        """Diseases the text names, longest phrase first: "chronic rhinosinusitis" names the
        chronic one only, not also every disease called "rhinosinusitis"."""
        stems = list(phrase_key(text))
        found: set[str] = set()
        used = [False] * len(stems)
        for n in range(min(self.max_len, len(stems)), 0, -1):
            for i in range(len(stems) - n + 1):
                if any(used[i : i + n]):
                    continue
                ids = self.by_phrase.get(tuple(stems[i : i + n]))
                if ids:
                    found |= ids
                    used[i : i + n] = [True] * n
        return found


_CERTAINTY = re.compile(
    r"(?i)\byou (definitely|certainly|clearly) have\b|\byou have been diagnosed\b|\bi diagnose\b"
    r"|\bno need to see a (doctor|clinician)\b|\bdo(n't| not) need (a|to see a) doctor\b"
    r"|\bstop taking\b|\bignore (your|the) (doctor|symptoms)\b"
)
_DISEASE_WORDS = re.compile(r"(?i)\b(cancer|tumou?r|leukemia|lymphoma|hiv|aids|carcinoma|malignan\w*)\b")


def validate_generated_text(
    text: str,
    candidate_ids: set[str],
    candidate_names: Iterable[str],
    names: DiseaseNameIndex | None,
    *,
    max_chars: int = 900,
) -> tuple[bool, str]:
    """(ok, reason). Generated text may only name candidate diagnoses and may not overclaim."""
    if not text.strip():
        return False, "empty"
    if len(text) > max_chars:
        return False, "too long"
    if _CERTAINTY.search(text):
        return False, "overclaims certainty or contradicts safety advice"
    if names is not None:
        outside = names.mentioned(text) - candidate_ids
        # A mention that is a sub-phrase of a candidate's own name (e.g. "pneumonia" inside
        # "bacterial pneumonia") is not a new diagnosis.
        allowed_text = " ".join(candidate_names).lower()
        outside = {d for d in outside if not _phrase_inside(d, names, allowed_text)}
        if outside:
            return False, "names a diagnosis outside the candidate set"
    joined = " ".join(candidate_names)
    for m in _DISEASE_WORDS.finditer(text):
        if m.group(0).lower() not in joined.lower():
            return False, f"mentions '{m.group(0)}' which is not a candidate"
    return True, ""


def _phrase_inside(disease_id: str, names: DiseaseNameIndex, allowed_text: str) -> bool:
    allowed_key = " ".join(phrase_key(allowed_text))
    return any(disease_id in ids and " ".join(key) in allowed_key for key, ids in names.by_phrase.items())
