"""Outages of the servers a consultation turn uses: answers, never crashes.

- The **graph** is required: a turn that cannot reach it fails with
  ``DependencyUnavailableError`` (the API answers 503 with ``Retry-After``) and the
  consultation is left exactly as it was, so the same message can be sent again.
- The **LLM** only phrases, confirms and summarises: without it a turn still answers, from the
  templates, and says so (``TurnResult.degraded``). ``TrackedChatModel`` notes the outage for
  the turn under way and fails fast for the rest of that turn instead of retrying every step.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from langgraph.checkpoint.sqlite import SqliteSaver
from pydantic import BaseModel

from assistant.llm.base import (
    ChatMessage,
    ChatModel,
    ChatResponse,
    LLMError,
    LLMTimeoutError,
    LLMUnavailableError,
)
from kg.store import GraphError

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)

LLM_UNAVAILABLE = "llm unavailable: phrasing from templates"
DEGRADED_NOTE = (
    "_Note: the language model is unavailable right now, so this reply was written from "
    "templates; the differential and the questions come from the knowledge graph as usual._"
)


GRAPH_RETRY_AFTER_S = 5
LLM_RETRY_AFTER_S = 3


class DependencyUnavailableError(RuntimeError):
    """A server the request needs is down or restarting; nothing was recorded, retry later."""

    def __init__(self, component: str, detail: str, *, retry_after_s: int = 5) -> None:
        super().__init__(detail)
        self.component = component
        self.detail = detail
        self.retry_after_s = retry_after_s


# What went wrong during the turn under way. LangGraph runs nodes in worker threads with a copy
# of the caller's context: the copy shares this list, so notes made there reach the caller.
_turn_notes: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "medkg_turn_notes", default=None
)


@contextlib.contextmanager
def tracking() -> Iterator[list[str]]:
    """Collect the degradations of one turn (``with tracking() as reasons: ...``)."""
    notes: list[str] = []
    token = _turn_notes.set(notes)
    try:
        yield notes
    finally:
        _turn_notes.reset(token)


def note(reason: str) -> None:
    notes = _turn_notes.get()
    if notes is not None and reason not in notes:
        notes.append(reason)


def _record_llm_failure() -> None:
    note(LLM_UNAVAILABLE)


def with_note(message: str, reasons: Sequence[str]) -> str:
    """The turn's message with the degraded-mode note appended (once)."""
    if LLM_UNAVAILABLE in reasons and DEGRADED_NOTE not in message:
        return f"{message}\n\n{DEGRADED_NOTE}" if message else DEGRADED_NOTE
    return message


class TrackedChatModel:
    """A ChatModel that notes, for the turn under way, when the server is unreachable."""

    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner
        self.model = inner.model

    def _fail_fast(self) -> None:
        notes = _turn_notes.get()
        if notes is not None and LLM_UNAVAILABLE in notes:
            raise LLMUnavailableError("the LLM server was unreachable earlier in this turn")

    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        self._fail_fast()
        try:
            return self.inner.chat(messages, **kwargs)
        except (LLMUnavailableError, LLMTimeoutError):
            _record_llm_failure()
            raise

    def stream(self, messages: Sequence[ChatMessage], **kwargs: Any) -> Iterator[str]:
        self._fail_fast()
        try:
            yield from self.inner.stream(messages, **kwargs)
        except (LLMUnavailableError, LLMTimeoutError):
            _record_llm_failure()
            raise

    def structured(self, messages: Sequence[ChatMessage], schema: type[T], **kwargs: Any) -> T:
        self._fail_fast()
        try:
            return self.inner.structured(messages, schema, **kwargs)
        except (LLMUnavailableError, LLMTimeoutError):
            _record_llm_failure()
            raise

    def __getattr__(self, name: str) -> Any:  # close(), base_url, ... of the wrapped client
        return getattr(self.inner, name)


# ---------------------------------------------------------------------- a failed turn leaves no trace
@dataclass(frozen=True)
class _Mark:
    checkpoint_id: str | None  # the thread's latest checkpoint before the turn (None: new thread)
    writes: list[tuple[Any, ...]]  # its pending writes then (the interrupt a resume answers)


def _mark(saver: Any, thread_id: str) -> _Mark | None:
    if not isinstance(saver, SqliteSaver):
        # Other checkpointers (Postgres) keep their own tables: not rolled back here (yet).
        return None
    with saver.lock:
        row = saver.conn.execute(
            "SELECT checkpoint_id FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = '' "
            "ORDER BY checkpoint_id DESC LIMIT 1",
            (thread_id,),
        ).fetchone()
        if row is None:
            return _Mark(None, [])
        writes = saver.conn.execute(
            "SELECT * FROM writes WHERE thread_id = ? AND checkpoint_id = ?", (thread_id, row[0])
        ).fetchall()
    return _Mark(str(row[0]), [tuple(w) for w in writes])


def _rollback(saver: SqliteSaver, thread_id: str, mark: _Mark) -> None:
    # Checkpoint ids are time-ordered (uuid6; the saver itself finds the latest by ORDER BY id),
    # so "after the mark" is "greater than the mark's id".
    with saver.lock, saver.conn:  # one transaction
        conn = saver.conn
        if mark.checkpoint_id is None:
            conn.execute("DELETE FROM checkpoints WHERE thread_id = ?", (thread_id,))
            conn.execute("DELETE FROM writes WHERE thread_id = ?", (thread_id,))
            return
        conn.execute(
            "DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_id > ?",
            (thread_id, mark.checkpoint_id),
        )
        conn.execute(
            "DELETE FROM writes WHERE thread_id = ? AND checkpoint_id >= ?", (thread_id, mark.checkpoint_id)
        )
        if mark.writes:
            holes = ", ".join("?" * len(mark.writes[0]))
            conn.executemany(f"INSERT INTO writes VALUES ({holes})", mark.writes)


@contextlib.contextmanager
def atomic_turn(saver: Any, thread_id: str) -> Iterator[None]:
    """One agent run on ``thread_id``: if it raises, the thread's checkpoints are put back as
    they were (the same message can be sent again; SQLite checkpointer), and a graph or LLM
    outage is raised as ``DependencyUnavailableError``."""
    mark = _mark(saver, thread_id)
    try:
        yield
    except BaseException as exc:
        try:
            if mark is not None:
                _rollback(saver, thread_id, mark)
        except Exception:  # the original error matters more; the log says the rest
            log.exception("could not roll back the failed turn of a consultation")
        if isinstance(exc, GraphError):
            raise DependencyUnavailableError(
                "graph",
                "The knowledge graph server is unavailable (restarting?); nothing was recorded. "
                "Send the same message again shortly.",
                retry_after_s=GRAPH_RETRY_AFTER_S,
            ) from exc
        if isinstance(exc, LLMError):
            raise DependencyUnavailableError(
                "llm",
                "The language model server is unavailable; nothing was recorded. "
                "Send the same message again shortly.",
                retry_after_s=LLM_RETRY_AFTER_S,
            ) from exc
        raise
