"""Separating ``<think>`` reasoning from the answer of reasoning models (DeepSeek-R1 distills).

Three shapes occur in practice:

* ``<think>reasoning</think>answer``: the model writes both tags;
* ``reasoning</think>answer``: the chat template already opened the block in the prompt
  (DeepSeek-R1 distills do this), so the output only closes it;
* the server splits the reasoning itself (vLLM ``--reasoning-parser deepseek_r1``, llama.cpp
  ``--reasoning-format deepseek``) and returns it as ``reasoning_content``; then the text has
  no tags at all and nothing needs stripping.

``split_think`` handles a complete text; ``ThinkSplitter`` does the same incrementally for a
stream, where a tag may be cut in two by chunk boundaries (``"<thi" + "nk>"``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

OPEN = "<think>"
CLOSE = "</think>"

Kind = Literal["answer", "reasoning"]

# Model names whose chat template opens the think block in the prompt, so their output starts
# inside it. Used to decide, while streaming, to hold text back until ``</think>`` is seen.
_IMPLICIT_THINK_NAMES = re.compile(r"deepseek-r1|[-_/]r1[-_]|qwq|reason|think", re.IGNORECASE)


def starts_inside_think(model: str) -> bool:
    """True for models whose output usually begins inside an already-open think block."""
    return bool(_IMPLICIT_THINK_NAMES.search(model))


def split_think(text: str) -> tuple[str, str | None]:
    """Return (answer, reasoning) for a complete model output; reasoning is None if there was none."""
    reasoning: list[str] = []
    rest = text
    close_at = rest.find(CLOSE)
    open_at = rest.find(OPEN)
    if close_at != -1 and (open_at == -1 or close_at < open_at):
        # An unclosed leading block: the prompt opened it, the output only closes it.
        reasoning.append(rest[:close_at])
        rest = rest[close_at + len(CLOSE) :]
    answer: list[str] = []
    while True:
        open_at = rest.find(OPEN)
        if open_at == -1:
            answer.append(rest.replace(CLOSE, ""))
            break
        answer.append(rest[:open_at])
        rest = rest[open_at + len(OPEN) :]
        close_at = rest.find(CLOSE)
        if close_at == -1:
            # Cut off while thinking (max_tokens): all of it is reasoning, no answer yet.
            reasoning.append(rest)
            break
        reasoning.append(rest[:close_at])
        rest = rest[close_at + len(CLOSE) :]
    thought = "".join(reasoning).strip()
    return "".join(answer).strip(), (thought or None)


def _partial_tag_suffix(text: str, tags: tuple[str, ...]) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of one of ``tags``."""
    longest = 0
    for tag in tags:
        for size in range(min(len(tag) - 1, len(text)), longest, -1):
            if text.endswith(tag[:size]):
                longest = size
                break
    return longest


@dataclass
class ThinkSplitter:
    """Incremental ``split_think``: feed chunks, get (kind, text) pieces out as early as possible.

    Text that might be the start of a tag is held back until the next chunk decides it. With
    ``implicit_open`` the output is assumed to start inside a think block: text is held until
    ``</think>`` arrives (then it was reasoning) or the stream ends without one (then it was the
    answer after all).
    """

    implicit_open: bool = False
    _mode: Kind = "answer"
    _buffer: str = ""
    _held: list[str] = field(default_factory=list)
    _implicit_pending: bool = False
    _strip_leading: bool = True

    def __post_init__(self) -> None:
        if self.implicit_open:
            self._mode = "reasoning"
            self._implicit_pending = True

    def feed(self, chunk: str) -> list[tuple[Kind, str]]:
        self._buffer += chunk
        out: list[tuple[Kind, str]] = []
        while True:
            if self._mode == "answer":
                open_at = self._buffer.find(OPEN)
                close_at = self._buffer.find(CLOSE)
                if close_at != -1 and (open_at == -1 or close_at < open_at):
                    # A stray close tag: drop it (split_think on the whole text decides what it was).
                    self._emit(out, "answer", self._buffer[:close_at])
                    self._buffer = self._buffer[close_at + len(CLOSE) :]
                    continue
                if open_at != -1:
                    self._emit(out, "answer", self._buffer[:open_at])
                    self._buffer = self._buffer[open_at + len(OPEN) :]
                    self._mode = "reasoning"
                    continue
                keep = _partial_tag_suffix(self._buffer, (OPEN, CLOSE))
            else:
                close_at = self._buffer.find(CLOSE)
                if close_at != -1:
                    self._emit(out, "reasoning", self._buffer[:close_at].replace(OPEN, ""))
                    self._buffer = self._buffer[close_at + len(CLOSE) :]
                    self._mode = "answer"
                    self._strip_leading = True
                    if self._implicit_pending:
                        self._implicit_pending = False
                        out.extend(("reasoning", piece) for piece in self._held)
                        self._held.clear()
                    continue
                keep = _partial_tag_suffix(self._buffer, (CLOSE, OPEN))
            ready = self._buffer[: len(self._buffer) - keep]
            self._buffer = self._buffer[len(ready) :]
            self._emit(out, self._mode, ready.replace(OPEN, "") if self._mode == "reasoning" else ready)
            return out

    def finish(self) -> list[tuple[Kind, str]]:
        out: list[tuple[Kind, str]] = []
        rest, self._buffer = self._buffer, ""
        if self._implicit_pending:
            # Never closed: there was no think block, the held text is the answer.
            self._implicit_pending = False
            self._mode = "answer"
            held = "".join(self._held) + rest
            self._held.clear()
            self._emit(out, "answer", held.replace(OPEN, ""))
        else:
            self._emit(out, self._mode, rest)
        return out

    def server_splits(self) -> list[tuple[Kind, str]]:
        """The server returns reasoning in its own field: stop assuming an open think block."""
        if not self._implicit_pending:
            return []
        self._implicit_pending = False
        self._mode = "answer"
        held = "".join(self._held) + self._buffer
        self._held.clear()
        self._buffer = ""
        out: list[tuple[Kind, str]] = []
        self._emit(out, "answer", held)
        return out

    def _emit(self, out: list[tuple[Kind, str]], kind: Kind, text: str) -> None:
        if kind == "answer" and self._strip_leading:
            text = text.lstrip()
            if text:
                self._strip_leading = False
        if not text:
            return
        if kind == "reasoning" and self._implicit_pending:
            self._held.append(text)
            return
        out.append((kind, text))
