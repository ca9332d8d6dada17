"""The four evaluation modes and what each needs."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Mode(StrEnum):
    DIRECT = "direct"  # question + options -> letter
    COT = "cot"  # think step by step, then "The answer is X"
    RAG = "rag"  # + passages retrieved with the question only (never the options)
    KG_RAG = "kg_rag"  # + facts of graph concepts linked in the question, + passages

    @property
    def needs_retriever(self) -> bool:
        return self in (Mode.RAG, Mode.KG_RAG)

    @property
    def answer_only(self) -> bool:
        """The prompt asks for the label alone (every mode but chain of thought)."""
        return self is not Mode.COT

    @property
    def needs_graph(self) -> bool:
        return self is Mode.KG_RAG


# Answer-only modes need a handful of tokens ("B) option text"); CoT needs room to reason.
DEFAULT_MAX_TOKENS: dict[Mode, int] = {Mode.DIRECT: 16, Mode.COT: 256, Mode.RAG: 16, Mode.KG_RAG: 16}


def parse_modes(values: Iterable[str]) -> list[Mode]:
    """Repeatable --mode values, 'all' meaning every mode; order kept, duplicates dropped."""
    modes: list[Mode] = []
    for value in values:
        for part in value.split(","):
            part = part.strip().lower()
            if not part:
                continue
            if part == "all":
                modes.extend(Mode)
                continue
            try:
                modes.append(Mode(part))
            except ValueError:
                raise ValueError(f"unknown mode {part!r} (choose from {', '.join(Mode)} or all)") from None
    if not modes:
        raise ValueError("no mode given")
    return list(dict.fromkeys(modes))
