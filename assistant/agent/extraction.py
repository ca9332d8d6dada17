"""Finding extraction from patient text, without trusting a small LLM.

Candidates come from a lexicon of the graph's finding names and synonyms (exact, normalized,
multi-word phrase matching) plus embedding similarity of text clauses to finding names. Each
mention gets a polarity from a NegEx-style scan (negation and uncertainty cues, scoped to
their clause). Demographics come from regular expressions. Answers to a follow-up question
(yes / no / don't know / a value) map back to the asked finding by rules; the LLM is only
consulted elsewhere, to confirm fuzzy candidates, and its output is validated against them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from assistant.text import (
    STOP_IN_PHRASE,
    FindingLexicon,
    cue_phrases,
    normalize_text,
    phrase_key,
    stem,
    tokenize,
)
from kg.models import FindingConcept, Observation, Sex

# --------------------------------------------------------------------------- polarity cues

_SENTENCE_PUNCT = {".", ";", "!", "?", ":", "(", ")"}


# Cues are token sequences on normalized text ("don't" -> "do not").
_UNCERTAIN_CUES = cue_phrases(
    "not sure if|not sure whether|not sure|do not know if|do not know whether|unsure if|unsure whether"
    "|unsure|not certain|can not tell if|ca not tell if|no idea if|wonder if|wondering if"
)
_HEDGE_CUES = cue_phrases("maybe|might have|might be|possibly|perhaps|i think i have|probably|could be")
_NEGATION_CUES = cue_phrases(
    "no|not|denies|deny|denied|denying|without|never|none|nor|negative for|free of|absence of|absent"
    "|no sign of|no signs of|ruled out|do not have|does not have|did not have|have not had|has not had"
    "|no longer"
)
_PSEUDO_NEGATION = cue_phrases("not only|no doubt|not just|no change in")
# Words that close a cue's scope: a new clause or a contrast starts.
_SCOPE_END = {"but", "however", "although", "though", "except", "yet", "still", "which", "apart", "aside"}
_SCOPE_END |= {"also", "plus", "whereas"}
# A new subject starts a new clause for a negation ("no fever, I have a cough"); an uncertainty
# cue reaches over it ("not sure if I have a rash") unless a comma came first.
_SUBJECT_RESTART = {"i", "i'm", "i've", "my", "she", "he", "we", "they", "it", "there"}
_MAX_SCOPE = 8


def _cue_list(cues: Iterable[str]) -> list[tuple[str, ...]]:
    return sorted((tuple(c.split()) for c in cues), key=len, reverse=True)


_UNCERTAIN = _cue_list(_UNCERTAIN_CUES)
_HEDGE = _cue_list(_HEDGE_CUES)
_NEGATION = _cue_list(_NEGATION_CUES)
_PSEUDO = _cue_list(_PSEUDO_NEGATION)


def _match_at(tokens: Sequence[str], i: int, cues: list[tuple[str, ...]]) -> int:
    for cue in cues:
        if tuple(tokens[i : i + len(cue)]) == cue:
            return len(cue)
    return 0


Polarity = str  # "present" | "absent" | "unsure" | "hedged"


def token_polarities(tokens: Sequence[str]) -> list[Polarity]:
    """Per token: the polarity a finding mentioned at that token gets."""
    out: list[Polarity] = ["present"] * len(tokens)
    state: Polarity = "present"
    remaining = 0
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        restart = tok in _SUBJECT_RESTART and (state == "absent" or (i > 0 and tokens[i - 1] == ","))
        if tok in _SENTENCE_PUNCT or tok in _SCOPE_END or restart:
            state, remaining = "present", 0
            i += 1
            continue
        n = _match_at(tokens, i, _PSEUDO)
        if n:
            i += n
            continue
        for cues, polarity in ((_UNCERTAIN, "unsure"), (_HEDGE, "hedged"), (_NEGATION, "absent")):
            n = _match_at(tokens, i, cues)
            if n:
                # "not sure" inside a negated scope stays unsure; a negation inside an unsure scope
                # ("not sure if I do not have") is treated as unsure as well.
                if not (state == "unsure" and polarity == "absent"):
                    state = polarity
                remaining = _MAX_SCOPE
                for j in range(i, min(i + n, len(tokens))):
                    out[j] = state
                i += n
                break
        else:
            if remaining > 0:
                out[i] = state
                if tok != ",":
                    remaining -= 1
                if remaining == 0:
                    state = "present"
            i += 1
    return out


# --------------------------------------------------------------------------- lexicon


@dataclass(frozen=True)
class Mention:
    finding_id: str
    start: int  # token index in the normalized token list
    end: int
    polarity: Polarity
    score: float  # 1.0 for an exact lexicon match, the cosine similarity for an embedding match
    method: str  # "lexicon" | "embedding" | "llm"
    rank: int = 0  # embedding matches: 0 for the best match of its clause, 1 for the next, ...


def _polarity_to_observation(polarity: Polarity, score: float) -> tuple[bool | None, float]:
    if polarity == "absent":
        return False, score
    if polarity == "unsure":
        return None, score
    if polarity == "hedged":
        return True, min(score, 0.6)
    return True, score


def mention_to_observation(m: Mention, source: str = "text") -> Observation:
    present, confidence = _polarity_to_observation(m.polarity, m.score)
    return Observation(
        finding_id=m.finding_id,
        present=present,
        source=source,  # type: ignore[arg-type]
        confidence=round(max(0.0, min(1.0, confidence)), 3),
    )


def _content_tokens(tokens: Sequence[str]) -> list[tuple[int, str]]:
    """(original index, stem) for the tokens that take part in phrase matching."""
    return [(i, stem(t)) for i, t in enumerate(tokens) if t.isalnum() and t not in STOP_IN_PHRASE]


def lexicon_mentions(tokens: Sequence[str], lexicon: FindingLexicon) -> list[Mention]:
    polarity = token_polarities(tokens)
    content = _content_tokens(tokens)
    stems = [s for _, s in content]
    mentions: list[Mention] = []
    covered: set[int] = set()
    # Longest match first so "sharp chest pain" wins over "chest pain" and "pain".
    for n in range(min(lexicon.max_len, len(stems)), 0, -1):
        for k in range(len(stems) - n + 1):
            if any(j in covered for j in range(k, k + n)):
                continue
            ids = lexicon.phrases.get(tuple(stems[k : k + n]))
            if not ids:
                continue
            start, end = content[k][0], content[k + n - 1][0] + 1
            # Polarity: the strongest cue over the phrase span (a cue inside the phrase counts).
            span_pols = set(polarity[start:end])
            pol = next((p for p in ("unsure", "absent", "hedged") if p in span_pols), "present")
            covered.update(range(k, k + n))
            for fid in sorted(ids):
                mentions.append(Mention(fid, start, end, pol, 1.0, "lexicon"))
    return mentions


_CLAUSE_SPLIT = re.compile(r"[.;!?\n]|,|\bbut\b|\band\b|\balso\b|\bplus\b")


def clauses(text: str) -> list[str]:
    parts = [p.strip() for p in _CLAUSE_SPLIT.split(normalize_text(text))]
    return [p for p in parts if len(p) >= 3][:40]


def embedding_mentions(
    text: str,
    lexicon: FindingLexicon,
    embed: Callable[[list[str]], np.ndarray],
    *,
    threshold: float = 0.62,
    per_clause: int = 2,
    exclude: set[str] | None = None,
) -> list[Mention]:
    """Fuzzy candidates: clauses whose embedding is close to a finding name."""
    if lexicon.embed_matrix is None or not lexicon.embed_texts:
        return []
    parts = clauses(text)
    if not parts:
        return []
    vectors = embed(parts)
    sims = vectors @ lexicon.embed_matrix.T
    out: dict[str, Mention] = {}
    for ci, part in enumerate(parts):
        tokens = tokenize(part)
        pols = token_polarities(tokens)
        pol = next((p for p in ("unsure", "absent", "hedged") if p in pols), "present")
        order = np.argsort(-sims[ci])[: per_clause * 4]
        if exclude and lexicon.embed_ids[int(order[0])] in exclude:
            continue  # the clause is already explained by an exact match
        taken = 0
        seen: set[str] = set()
        for idx in order:
            score = float(sims[ci, idx])
            if score < threshold or taken >= per_clause:
                break
            fid = lexicon.embed_ids[int(idx)]
            if fid in seen or (exclude and fid in exclude):
                continue
            seen.add(fid)
            if fid not in out or out[fid].score < score:
                out[fid] = Mention(fid, ci, ci, pol, score, "embedding", rank=taken)
            taken += 1
    return list(out.values())


def merge_mentions(mentions: Iterable[Mention]) -> dict[str, Mention]:
    """One mention per finding: exact beats fuzzy; between exact ones, the last said wins."""
    best: dict[str, Mention] = {}
    for m in mentions:
        cur = best.get(m.finding_id)
        if cur is None or m.method == "lexicon" or (cur.method != "lexicon" and m.score > cur.score):
            best[m.finding_id] = m
    return best


# --------------------------------------------------------------------------- demographics

_NOT_AN_AGE = (
    r"(?!\s*(?:kg|lbs?|cm|%|days?|weeks?|months?|hours?|h\b|minutes?|mins?|times?|am\b|pm\b|o'clock))"
)
# "34 year old", "34-year-old", "34 years of age", "34yo", "34 y/o", "34 y.o."
_YEARS_OLD = re.compile(
    r"\b(\d{1,3})\s*-?\s*(?:(?:years?|yrs?|yr)\s*-?\s*(?:old|of\s+age)\b|y\s*/\s*o\b|y\.\s?o\b\.?|yo\b)"
)
# "3-month-old", "6 weeks old", "10 day old": under a year, in whole years.
_UNDER_A_YEAR = re.compile(r"\b(\d{1,3})\s*-?\s*(months?|mos?|weeks?|wks?|days?)\s*-?\s*old\b")
_DAYS_PER_UNIT = {"m": 30.4, "w": 7.0, "d": 1.0}
_NEWBORN = re.compile(r"\b(?:new\s*-?\s*born|neonate)\b")
# "I'm 34", "aged 70", "age: 70", "age is 70" (not "I am 6 months pregnant").
_STATED_AGE = re.compile(r"\b(?:i\s*am|i'm|im|aged?)\s*[:=]?\s*(?:is\s*)?(\d{1,3})\b" + _NOT_AN_AGE)
# "45M", "45 f", "f 32".
_AGE_SEX = re.compile(r"\b(\d{1,3})\s*([mf])\b")
_SEX_AGE = re.compile(r"(?<!')\b([mf])\s*(\d{1,3})\b" + _NOT_AN_AGE)  # not the m of "i'm 5 days"
_FEMALE = {"woman", "female", "girl", "lady", "pregnant", "mother", "grandmother", "wife"}
_MALE = {"man", "male", "boy", "guy", "gentleman", "father", "grandfather", "husband"}
# Right after a stated age, these name the patient ("my 3-month-old son", "a 6-year-old girl").
_PATIENT_F = {"woman", "female", "girl", "lady", "daughter", "f"}
_PATIENT_M = {"man", "male", "boy", "guy", "gentleman", "son", "m"}
_OTHER_PERSON = {"my", "his", "her", "their", "our", "your"}
MAX_AGE = 120


@dataclass(frozen=True)
class Demographics:
    age: int | None = None
    sex: Sex | None = None


def _sex_of(word: str) -> Sex | None:
    if word in _PATIENT_F:
        return "F"
    if word in _PATIENT_M:
        return "M"
    return None


def _age_and_sex(norm: str) -> tuple[int | None, Sex | None, int]:
    """The stated age (whole years; under one year is 0), a sex named with it, and where the
    age phrase ends (-1 when no age is stated)."""
    m = _UNDER_A_YEAR.search(norm)
    if m:
        days = int(m.group(1)) * _DAYS_PER_UNIT[m.group(2)[0]]
        return int(days // 365.25), None, m.end()
    m = _YEARS_OLD.search(norm) or _STATED_AGE.search(norm)
    if m and int(m.group(1)) <= MAX_AGE:
        return int(m.group(1)), None, m.end()
    for pattern, digits, letter in ((_AGE_SEX, 1, 2), (_SEX_AGE, 2, 1)):
        m = pattern.search(norm)
        if m and int(m.group(digits)) <= MAX_AGE:
            return int(m.group(digits)), _sex_of(m.group(letter)), m.end()
    m = _NEWBORN.search(norm)
    if m:
        return 0, None, m.end()
    return None, None, -1


def extract_demographics(text: str) -> Demographics:
    """Age and sex the patient states: "I am a 34 year old woman", "34yo male", "45M",
    "aged 70", "my 3-month-old son" (age 0: under one year). None where not stated; a
    duration ("a fever for 3 years") is not an age."""
    norm = normalize_text(text)
    age, sex, end = _age_and_sex(norm)
    if end >= 0 and sex is None:
        following = tokenize(norm[end:])[:1]
        sex = _sex_of(following[0]) if following else None
    tokens = tokenize(norm)
    for i, tok in enumerate(tokens):
        if sex is not None:
            break
        prev = tokens[i - 1] if i else ""
        if prev in _OTHER_PERSON:
            continue  # "my husband has a cough" says nothing of the patient's sex
        if tok in _FEMALE - {"mother", "grandmother", "wife"} or (tok == "pregnant" and prev != "not"):
            sex = "F"
        elif tok in _MALE - {"father", "grandfather", "husband"}:
            sex = "M"
    return Demographics(age=age, sex=sex)


# --------------------------------------------------------------------------- answers

_DONT_KNOW = _cue_list(
    cue_phrases(
        "do not know|dont know|dunno|idk|not sure|unsure|no idea|can not tell|ca not tell|not certain"
        "|can not say|ca not say|hard to say|maybe|no clue|unknown|perhaps|?"
    )
)
_NO = _cue_list(
    cue_phrases(
        "no|nope|nah|n|never|not really|not at all|none|negative|i do not|i have not|i am not|did not"
        "|does not|not|false|absolutely not|no way|nothing|nowhere"
    )
)
_YES = _cue_list(
    cue_phrases(
        "yes|yeah|yep|yup|ya|yah|y|sure|definitely|i do|i have|i did|correct|right|true|a bit|a little"
        "|a lot|sometimes|kind of|kinda|sort of|somewhat|absolutely|of course|indeed|affirmative"
        "|i think so|ok|okay|slightly|often|always|very|lots|mild|mildly|severe|really bad|i am|it does"
        "|it is|yea|uh huh|mhm"
    )
)


@dataclass(frozen=True)
class AnswerMapping:
    observations: list[Observation]
    understood: bool


def classify_reply(text: str) -> str | None:
    """'yes' | 'no' | 'unknown' for a short reply, None when it is neither."""
    tokens = tokenize(text)
    if not tokens:
        return None
    stripped = [t for t in tokens if t not in {",", ".", "!"}]
    if not stripped:
        return None
    head = stripped[:6]
    for label, cues in (("unknown", _DONT_KNOW), ("no", _NO), ("yes", _YES)):
        for i in range(len(head)):
            # Only cues near the start decide: "yes but not much" is yes, "it hurts, no" is no.
            if _match_at(head, i, cues) and (i <= 2 or label == "unknown"):
                return label
    return None


_SIDE = {"left": "(l)", "right": "(r)"}


def _value_matches(reply: str, finding: FindingConcept) -> list[str]:
    """Value codes of a categorical/multi finding that the reply names (code or meaning)."""
    norm = normalize_text(reply)
    tokens = set(phrase_key(reply))
    raw_tokens = tokenize(reply)
    # A meaning quoted verbatim ("groin(R)") wins over word overlap.
    exact = [
        code
        for code, meaning in finding.allowed_values.items()
        if len(meaning.strip()) > 2
        and re.search(rf"(?<![a-z]){re.escape(normalize_text(meaning))}(?![a-z])", norm)
    ]
    found: list[str] = []
    for code, meaning in finding.allowed_values.items():
        if norm.strip() == code.lower() or re.search(rf"\b{re.escape(code.lower())}\b", norm):
            found.append(code)
            continue
        m = normalize_text(meaning)
        side = "(l)" if "(l)" in m else "(r)" if "(r)" in m else None
        base = m.replace("(l)", " ").replace("(r)", " ")
        key = phrase_key(base)
        if not key or meaning.strip().upper() in {"NA", "N", "Y"}:
            continue
        if all(k in tokens for k in key):
            if side is not None:
                said = {_SIDE[w] for w in raw_tokens if w in _SIDE}
                if said and side not in said:
                    continue
            found.append(code)
    if not exact:
        return found

    def without_side(code: str) -> str:
        return normalize_text(finding.allowed_values[code]).replace("(l)", "").replace("(r)", "").strip()

    exact_bases = {without_side(c) for c in exact}
    return exact + [c for c in found if c not in exact and without_side(c) not in exact_bases]


def _scale_value(reply: str, finding: FindingConcept) -> str | None:
    """A number on a numeric scale finding (DDXPlus intensity 0-10)."""
    codes = list(finding.allowed_values) or []
    if not codes or not all(c.lstrip("-").isdigit() for c in codes):
        return None
    m = re.search(r"\b(\d{1,2})\b", reply)
    if m and m.group(1) in finding.allowed_values:
        return m.group(1)
    return None


def _obs(finding: FindingConcept, present: bool | None, source: str, **extra: Any) -> Observation:
    return Observation(finding_id=finding.id, present=present, source=source, **extra)  # type: ignore[arg-type]


def map_answer(reply: str, finding: FindingConcept, source: str = "answer") -> AnswerMapping:
    """Map a reply to the asked finding: yes / no / don't know / a value (no LLM needed)."""
    label = classify_reply(reply)
    if finding.value_type != "binary" and finding.allowed_values:
        scale = _scale_value(reply, finding)
        if scale is not None:
            return AnswerMapping([_obs(finding, scale != "0", source, value=scale)], True)
        values = _value_matches(reply, finding)
        meanings = {c: normalize_text(v) for c, v in finding.allowed_values.items()}
        no_codes = [c for c, v in meanings.items() if v in {"n", "no", "nowhere", "none", "nulle part"}]
        yes_codes = [c for c, v in meanings.items() if v in {"y", "yes"}]
        if values and not (label == "no" and set(values) <= set(no_codes)):
            if finding.value_type == "categorical":
                values = values[:1]
            return AnswerMapping([_obs(finding, c not in no_codes, source, value=c) for c in values], True)
        if label == "yes" and yes_codes:
            return AnswerMapping([_obs(finding, True, source, value=yes_codes[0])], True)
        if label == "no":
            value = no_codes[0] if no_codes else None
            return AnswerMapping([_obs(finding, False, source, value=value)], True)
    if label == "unknown":
        return AnswerMapping([_obs(finding, None, source, confidence=0.0)], True)
    if label == "no":
        return AnswerMapping([_obs(finding, False, source)], True)
    if label == "yes":
        hedged = any(t in tokenize(reply) for t in ("think", "probably", "guess"))
        return AnswerMapping([_obs(finding, True, source, confidence=0.7 if hedged else 1.0)], True)
    return AnswerMapping([], False)
