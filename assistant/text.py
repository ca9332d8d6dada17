"""The text core under the agent: normalization, tokens, the tiny stemmer, phrase keys and the
finding lexicon (the graph's finding names and patient phrasings, indexed by phrase key).

assistant.agent.extraction (mentions, negation, demographics, answers), assistant.safety and
assistant.agent.context build on it; it imports nothing from assistant.agent.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from kg.models import FindingConcept

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[.,;:!?()]")
# Words whose plural/singular and inflections should match the lexicon entry.
_IRREGULAR = {"feet": "foot", "teeth": "tooth", "children": "child", "women": "woman", "men": "man"}
STOP_IN_PHRASE = {"the", "a", "an", "of", "my", "in", "on", "at", "to", "your", "some", "any"}


def normalize_text(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("’", "'").replace("‘", "'")
    text = re.sub(r"n't\b", " not", text)  # don't -> do not, can't -> ca not: negation keeps working
    return text


def stem(token: str) -> str:
    """Tiny stemmer so 'headaches' ~ 'headache', 'vomiting' ~ 'vomit' match (lexicon and text alike)."""
    token = _IRREGULAR.get(token, token)
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", "e"), ("s", "")):
        if len(token) > len(suffix) + 3 and token.endswith(suffix) and not token.endswith("ss"):
            return token[: -len(suffix)] + repl
    return token


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(normalize_text(text))


def phrase_key(text: str) -> tuple[str, ...]:
    return tuple(stem(t) for t in tokenize(text) if t not in STOP_IN_PHRASE and t.isalnum())


def cue_phrases(spec: str) -> list[str]:
    """Cue phrases written as one '|'-separated string (keeps the long lists readable)."""
    return [c.strip() for c in spec.split("|") if c.strip()]


# Phrasings patients use that graph names rarely hold; mapped onto graph phrases when present.
PATIENT_SYNONYMS: dict[str, str] = {
    "fever": "temperature|feverish|high temperature|febrile|pyrexia",
    "cough": "coughing",
    "headache": "head hurts|head ache|head pain|my head hurts",
    "shortness of breath": "short of breath|breathless|out of breath|can not breathe|ca not breathe"
    "|trouble breathing|difficulty breathing|hard to breathe|dyspnea|dyspnoea",
    "sore throat": "throat hurts|throat pain|painful throat|scratchy throat",
    "vomiting": "throwing up|threw up|vomit|puking",
    "nausea": "nauseous|nauseated|sick to my stomach|queasy",
    "diarrhea": "diarrhoea|loose stools|runny stools|watery stools",
    "chest pain": "chest hurts|pain in my chest|chest pressure|chest tightness",
    "abdominal pain": "stomach ache|stomach pain|belly pain|tummy ache|stomach hurts",
    "fatigue": "tired|tiredness|exhausted|exhaustion|no energy|worn out",
    "dizziness": "dizzy|lightheaded|light headed|vertigo",
    "nasal congestion": "stuffy nose|blocked nose|congested nose|congestion",
    "runny nose": "rhinorrhea|running nose",
    "skin rash": "rash",
    "palpitations": "heart racing|racing heart|heart pounding|pounding heart",
    "fainting": "fainted|passed out|blacked out|syncope",
    "back pain": "backache|back ache|back hurts",
    "wheezing": "wheeze|wheezy",
    "chills": "shivering|shivers|rigors",
}


@dataclass
class FindingLexicon:
    """Phrase index over the graph's findings (built once per runtime, cached)."""

    findings: dict[str, FindingConcept]
    phrases: dict[tuple[str, ...], set[str]] = field(default_factory=dict)
    max_len: int = 1
    # Embedding side: the texts embedded and which finding each belongs to.
    embed_texts: list[str] = field(default_factory=list)
    embed_ids: list[str] = field(default_factory=list)
    embed_matrix: np.ndarray | None = None

    @classmethod
    def build(cls, findings: Iterable[FindingConcept]) -> FindingLexicon:
        lex = cls(findings={f.id: f for f in findings})
        by_phrase: dict[tuple[str, ...], set[str]] = {}
        for f in lex.findings.values():
            if f.value_of:
                continue  # "pain location: pharynx" is asked, not extracted from free text
            names = [f.name, *f.synonyms]
            for name in names:
                key = phrase_key(name)
                if key and (len(key) > 1 or len(key[0]) > 2):
                    by_phrase.setdefault(key, set()).add(f.id)
                    lex.embed_texts.append(name)
                    lex.embed_ids.append(f.id)
        # Patient phrasings: only attach to phrases the graph actually has.
        for target, variants in PATIENT_SYNONYMS.items():
            ids = by_phrase.get(phrase_key(target))
            if not ids:
                continue
            for v in cue_phrases(variants):
                key = phrase_key(v)
                if key and key not in by_phrase:
                    by_phrase[key] = set(ids)
        lex.phrases = by_phrase
        lex.max_len = max((len(k) for k in by_phrase), default=1)
        return lex

    def attach_embeddings(self, matrix: np.ndarray) -> None:
        if matrix.shape[0] != len(self.embed_texts):
            raise ValueError("embedding matrix does not match the lexicon texts")
        self.embed_matrix = matrix.astype(np.float32)

    def name(self, finding_id: str) -> str:
        f = self.findings.get(finding_id)
        return f.name if f else finding_id
