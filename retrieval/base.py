"""The ``Retriever`` boundary and the passage model shared with the agent and evaluation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field


class Passage(BaseModel):
    id: str  # stable chunk id
    text: str
    title: str = ""
    source: str = ""
    url: str | None = None
    license: str | None = None
    score: float = 0.0
    metadata: dict[str, str] = Field(default_factory=dict)


@runtime_checkable
class Retriever(Protocol):
    def search(self, query: str, k: int = 5, filters: Mapping[str, str] | None = None) -> list[Passage]:
        """Best passages for the query; an empty or meaningless query returns []."""
