"""Prompt templates as files, loaded by name.

Each template is ``prompts/<name>.txt``. Its first line may be ``# version: N``; the version
is part of cache keys (evaluation) so a changed prompt never reuses stale answers. Templates
use ``str.format`` fields (``{question}``); literal braces are doubled.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PROMPT_DIR = Path(__file__).parent


class PromptNotFoundError(KeyError):
    pass


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    template: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.template.encode()).hexdigest()[:12]

    def render(self, **fields: object) -> str:
        return self.template.format(**fields)


@cache
def load_prompt(name: str) -> Prompt:
    path = PROMPT_DIR / f"{name}.txt"
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in PROMPT_DIR.glob("*.txt")))
        raise PromptNotFoundError(f"no prompt named {name!r} (available: {available})")
    text = path.read_text(encoding="utf-8")
    version = "0"
    first, _, rest = text.partition("\n")
    if first.startswith("# version:"):
        version = first.split(":", 1)[1].strip()
        text = rest
    return Prompt(name=name, version=version, template=text.strip("\n"))
