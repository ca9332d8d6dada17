"""The one typed item every QA loader produces."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field, model_validator


class Suite(StrEnum):
    MEDQA = "medqa"
    PUBMEDQA = "pubmedqa"  # reasoning-required setting: the question only, no abstract
    PUBMEDQA_CTX = "pubmedqa_ctx"  # with the abstract's contexts in the prompt
    MEDMCQA = "medmcqa"
    MMLU_MEDICAL = "mmlu_medical"
    MEDXPERTQA = "medxpertqa"

    @property
    def yes_no_maybe(self) -> bool:
        return self in (Suite.PUBMEDQA, Suite.PUBMEDQA_CTX)


YES_NO_MAYBE: dict[str, str] = {"yes": "yes", "no": "no", "maybe": "maybe"}


class QAItem(BaseModel):
    """One benchmark question.

    ``question`` is the stem only (never the options): retrieval and entity linking see it
    alone, as MIRAGE prescribes. ``options`` maps labels to option texts: letters ("A".."J")
    for multiple choice, or ``yes``/``no``/``maybe`` for PubMedQA. ``answer`` is a label.
    """

    id: str
    suite: Suite
    question: str = Field(min_length=1)
    options: dict[str, str]
    answer: str
    contexts: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _answer_is_an_option(self) -> QAItem:
        if len(self.options) < 2:
            raise ValueError(f"item {self.id}: needs at least two options, got {len(self.options)}")
        if self.answer not in self.options:
            raise ValueError(
                f"item {self.id}: answer {self.answer!r} is not one of the options {sorted(self.options)}"
            )
        return self

    @property
    def yes_no_maybe(self) -> bool:
        return self.suite.yes_no_maybe
