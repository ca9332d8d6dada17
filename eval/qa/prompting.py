"""From a QA item (and its evidence) to chat messages, with pinned templates in prompts/qa_*.txt.

A template holds a ``[system]`` section and a ``[user]`` section; each is filled with
``str.format`` fields: ``question`` and ``options`` (multiple choice) or ``context`` (PubMedQA's
abstract block, empty in the reasoning-required setting), plus ``documents`` (rag, kg_rag) and
``facts`` (kg_rag).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from assistant.llm.base import ChatMessage
from eval.qa.items import QAItem
from prompts import Prompt, load_prompt
from retrieval.base import Passage

_SECTION = re.compile(r"^\[(system|user)\]\s*$", re.MULTILINE)


class PromptFormatError(ValueError):
    pass


@dataclass(frozen=True)
class QAPrompt:
    prompt: Prompt
    system: str
    user: str

    @property
    def name(self) -> str:
        return self.prompt.name

    @property
    def version(self) -> str:
        return self.prompt.version

    def messages(self, **fields: str) -> list[ChatMessage]:
        messages = []
        if self.system:
            messages.append(ChatMessage(role="system", content=self.system.format(**fields)))
        messages.append(ChatMessage(role="user", content=self.user.format(**fields)))
        return messages


def prompt_name(mode: str, yes_no_maybe: bool) -> str:
    return f"qa_{mode}_ynm" if yes_no_maybe else f"qa_{mode}"


def load_qa_prompt(name: str) -> QAPrompt:
    prompt = load_prompt(name)
    parts = _SECTION.split(prompt.template)
    # parts = [preamble, 'system', text, 'user', text]
    sections = {parts[i]: parts[i + 1].strip("\n") for i in range(1, len(parts) - 1, 2)}
    if "user" not in sections:
        raise PromptFormatError(f"prompt {name!r} has no [user] section")
    return QAPrompt(prompt=prompt, system=sections.get("system", ""), user=sections["user"])


def format_options(item: QAItem) -> str:
    return "\n".join(f"{label}. {text}" for label, text in item.options.items())


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def format_documents(passages: Sequence[Passage], *, chars_per_passage: int = 600) -> str:
    if not passages:
        return "(none found)"
    lines = []
    for n, passage in enumerate(passages, 1):
        title = f"{passage.title}: " if passage.title else ""
        lines.append(f"[{n}] {title}{_clip(passage.text, chars_per_passage)}")
    return "\n".join(lines)


def format_context(item: QAItem, *, max_chars: int = 3000) -> str:
    """PubMedQA's abstract (without its conclusion), as a block ending in a blank line."""
    if not item.contexts:
        return ""
    return f"Context:\n{_clip(' '.join(item.contexts), max_chars)}\n\n"


def build_fields(
    item: QAItem,
    *,
    passages: Sequence[Passage] = (),
    facts: str = "",
    chars_per_passage: int = 600,
) -> dict[str, str]:
    return {
        "question": item.question,
        "options": format_options(item),
        "context": format_context(item),
        "documents": format_documents(passages, chars_per_passage=chars_per_passage),
        "facts": facts or "(no linked concepts)",
    }
