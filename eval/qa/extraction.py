"""Answer extraction: from a model's free text to one option label, or None (unparseable).

Rules, most explicit first, so that a chain of thought that mentions several options still
yields its conclusion:
1. a JSON object with an answer key ({"answer": "B"}, {"answer_choice": "(B)"});
2. the last explicit statement ("the answer is B", "Answer: (B)", "correct option is B",
   "\\boxed{B}", "I would choose B", "final decision: maybe");
3. a leading label ("B", "(B)", "B.", "B) text", "yes, because ...");
4. exactly one option's text quoted (the longest when one option's text contains another's);
5. exactly one label written in a label-like form anywhere ("(C)", "C.").
The client already strips <think> blocks; a leftover one is removed here too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_MARKUP = re.compile(r"\*\*|__|`")
_JSON_OBJECT = re.compile(r"\{[^{}]*\}")
_JSON_KEYS = ("answer", "answer_choice", "answer choice", "choice", "final_answer", "option", "decision")
YNM = ("yes", "no", "maybe")


@dataclass(frozen=True)
class Extraction:
    answer: str | None
    method: str  # json | statement | leading | option_text | lone_label | none

    @property
    def parsed(self) -> bool:
        return self.answer is not None


def _clean(text: str) -> str:
    text = _THINK.sub(" ", text)
    if "</think>" in text.lower():  # an opening tag lost to truncation of the prompt side
        text = text[text.lower().rindex("</think>") + len("</think>") :]
    text = _MARKUP.sub("", text)
    return text.strip()


def _norm(text: str) -> str:
    text = re.sub(r"[^\w%./+-]+", " ", text.lower())
    return " ".join(text.split()).strip(" .")


def _letter_patterns(letters: str) -> list[re.Pattern[str]]:
    L = f"[{letters}]"
    opt = r"(?i:(?:option|choice|letter)\s*)?"
    end = r"(?![A-Za-z0-9])"
    return [
        re.compile(
            rf"(?i:(?:final\s+|correct\s+|best\s+|right\s+)?answer)\s*(?i:is|would\s+be|should\s+be|will\s+be)?"
            rf"\s*(?i:probably|likely)?\s*[:=\-–]?\s*{opt}[\(\[]?({L})[\)\]]?{end}"
        ),
        re.compile(
            rf"(?i:correct|best|right|most\s+appropriate|most\s+likely)\s+(?i:option|choice|response)"
            rf"\s*(?i:is|would\s+be|:)?\s*{opt}[\(\[]?({L})[\)\]]?{end}"
        ),
        re.compile(rf"\\boxed\{{\s*[\(\[]?({L})[\)\]]?\s*\}}"),
        re.compile(
            rf"(?i:I\s+(?:would\s+)?(?:choose|pick|select|go\s+with))\s+{opt}[\(\[]?({L})[\)\]]?{end}"
        ),
        re.compile(
            rf"(?<![A-Za-z]){opt}[\(\[]?({L})[\)\]]?\s+(?i:is\s+(?:the\s+)?(?:correct|right|best)"
            rf"(?:\s+(?:answer|option|choice))?)"
        ),
    ]


def _label_from_value(value: object, options: Mapping[str, str]) -> str | None:
    if value is None:
        return None
    text = _clean(str(value))
    if not text:
        return None
    yes_no = set(options) == set(YNM)
    if yes_no:
        word = text.strip(" ().[]").lower()
        return word if word in options else _ynm_leading(text)
    head = re.match(r"^[\(\[]?([A-Z])[\)\]\.:]?(?:\s|$)", text)
    if head and head.group(1) in options:
        return head.group(1)
    return _option_text(text, options)


def _from_json(text: str, options: Mapping[str, str]) -> str | None:
    found: str | None = None
    for blob in _JSON_OBJECT.findall(text):
        try:
            data = json.loads(blob)
        except json.JSONDecodeError:
            try:
                data = json.loads(blob.replace("'", '"'))
            except json.JSONDecodeError:
                continue
        if not isinstance(data, dict):
            continue
        lowered = {str(k).lower().strip(): v for k, v in data.items()}
        for key in _JSON_KEYS:
            if key in lowered:
                label = _label_from_value(lowered[key], options)
                if label is not None:
                    found = label
                    break
    return found


def _last_statement(text: str, patterns: list[re.Pattern[str]]) -> str | None:
    best: tuple[int, str] | None = None
    for pattern in patterns:
        for match in pattern.finditer(text):
            if best is None or match.start() > best[0]:
                best = (match.start(), match.group(1))
    return best[1] if best else None


def _statement_option_text(text: str, options: Mapping[str, str]) -> str | None:
    """'The answer is Tell the attending ...': the option text after the last answer cue."""
    cues = list(re.finditer(r"(?i)answer\s*(?:is|:)\s*", text))
    if not cues:
        return None
    tail = text[cues[-1].end() :]
    tail = re.split(r"(?<=[.!?])\s|\n", tail, maxsplit=1)[0]
    return _option_text(tail, options, must_start=True)


def _leading_letter(text: str, options: Mapping[str, str]) -> str | None:
    match = re.match(
        r"^(?i:option|choice|answer)?\s*[:\-]?\s*([\(\[])?([A-Z])([\)\]\.:,])?(?=\s|$)(.*)", text, re.S
    )
    if not match or match.group(2) not in options:
        return None
    letter, bracket, punct, rest = match.group(2), match.group(1), match.group(3), match.group(4)
    if bracket or punct or not rest.strip():
        return letter
    # "B Tell the attending ...": accept a bare letter only when its own option text follows,
    # so "A 45-year-old man ..." or "I think ..." is not read as a label.
    rest_norm, option_norm = _norm(rest), _norm(options[letter])
    if option_norm and rest_norm.startswith(option_norm[: max(8, min(len(option_norm), 30))]):
        return letter
    return None


def _option_text(text: str, options: Mapping[str, str], *, must_start: bool = False) -> str | None:
    haystack = f" {_norm(text)} "
    hits: dict[str, tuple[int, int]] = {}
    for label, option in options.items():
        needle = _norm(option)
        if not needle:
            continue
        position = haystack.find(f" {needle} ")
        if position >= 0:
            hits[label] = (position, len(needle))
    # An option whose text sits inside a longer matched option's text is not a separate hit.
    kept = {
        label: span
        for label, span in hits.items()
        if not any(
            other != label
            and _norm(options[label]) in _norm(options[other])
            and len(_norm(options[other])) > span[1]
            for other in hits
        )
    }
    if must_start:
        starting = [label for label, (pos, _) in kept.items() if pos == 0]
        return starting[0] if len(starting) == 1 else None
    if len(kept) == 1:
        return next(iter(kept))
    starting = [label for label, (pos, _) in kept.items() if pos == 0]
    return starting[0] if len(starting) == 1 else None


def _lone_label(text: str, letters: str) -> str | None:
    found = set(re.findall(rf"\(([{letters}])\)", text))
    found |= set(re.findall(rf"(?<![\w'’-])([{letters}])(?=[\)\]\.:](?:\s|$))", text))
    found |= set(re.findall(rf"(?<![\w'’-])([{letters}])\s*$", text))
    return found.pop() if len(found) == 1 else None


def _ynm_leading(text: str) -> str | None:
    match = re.match(r"^\W*(yes|no|maybe)\b", text, re.IGNORECASE)
    return match.group(1).lower() if match else None


_YNM_STATEMENT = re.compile(
    r"(?i)(?:final\s+)?(?:answer|decision|conclusion)\s*(?:is|would\s+be|will\s+be)?\s*[:=\-–]?\s*"
    r"[\(\[\"']?(yes|no|maybe)\b"
)


def _extract_yes_no_maybe(text: str, options: Mapping[str, str], *, answer_first: bool) -> Extraction:
    label = _from_json(text, options)
    if label is not None:
        return Extraction(label, "json")
    if answer_first and (label := _ynm_leading(text)) is not None:
        return Extraction(label, "leading")
    statements = list(_YNM_STATEMENT.finditer(text))
    if statements:
        return Extraction(statements[-1].group(1).lower(), "statement")
    label = _ynm_leading(text)
    if label is not None:
        return Extraction(label, "leading")
    words = {w.lower() for w in re.findall(r"(?i)\b(yes|no|maybe)\b", text)}
    if len(words) == 1:
        return Extraction(words.pop(), "lone_label")
    return Extraction(None, "none")


def extract_answer(text: str, options: Mapping[str, str], *, answer_first: bool = False) -> Extraction:
    """The option label the text commits to, and which rule found it.

    ``answer_first``: the prompt asked for the label alone (answer-only modes), so a leading
    label is the answer and anything after it is continuation that a small model rambles on
    with ("A. Renal artery stenosis\n\nThe correct answer is D" answers A). Without it (chain
    of thought) the last explicit statement wins.
    """
    text = _clean(text or "")
    if not text:
        return Extraction(None, "none")
    if set(options) == set(YNM):
        return _extract_yes_no_maybe(text, options, answer_first=answer_first)
    letters = "".join(sorted(k for k in options if len(k) == 1 and k.isalpha()))
    label = _from_json(text, options)
    if label is not None:
        return Extraction(label, "json")
    if answer_first:
        label = _leading_letter(text, options)
        if label is not None:
            return Extraction(label, "leading")
    if letters:
        label = _last_statement(text, _letter_patterns(letters))
        if label is not None:
            return Extraction(label, "statement")
    label = _statement_option_text(text, options)
    if label is not None:
        return Extraction(label, "statement")
    label = _leading_letter(text, options)
    if label is not None:
        return Extraction(label, "leading")
    label = _option_text(text, options)
    if label is not None:
        return Extraction(label, "option_text")
    if letters:
        label = _lone_label(text, letters)
        if label is not None:
            return Extraction(label, "lone_label")
    return Extraction(None, "none")
