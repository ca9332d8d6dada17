"""The consultation facade used by the CLI, the UI, the API and the evaluation.

One LangGraph run per turn on a thread whose id is the session id; the checkpointer of the
injected ``SessionStore`` (assistant/sessions.py: SQLite at ``settings.sessions_path`` by default,
or Postgres shared by replicas) keeps every step, so a new process continues a session where the
old one stopped. Safe to call from several threads: turns of one session are serialised by a
per-session lock in this process (the fast path; interfaces add none) and, across processes, by
the store's lock (a Postgres advisory lock; nothing for SQLite, which one process owns).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast

from langgraph.types import Command

from assistant import outages
from assistant.agent.context import AgentContext, AgentRun
from assistant.agent.graph import build_agent_graph
from assistant.agent.render import question_message
from assistant.agent.state import (
    AgentOptions,
    AgentState,
    Json,
    TurnInput,
    image_findings,
    observations,
    passages,
    pending,
    ranked,
)
from assistant.contracts import (
    ConsultationState,
    NoPendingQuestionError,
    SessionNotFoundError,
    TranscriptEntry,
    TurnResult,
)
from assistant.safety import DISCLAIMER, InputRejectedError, clean_message
from assistant.sessions import SessionStore, open_sessions
from assistant.settings import Settings
from kg.models import Sex

log = logging.getLogger(__name__)


class Consultation:
    def __init__(
        self,
        agent: AgentContext,
        settings: Settings,
        *,
        options: AgentOptions | None = None,
        sessions_path: str | None = None,
        sessions: SessionStore | None = None,
    ) -> None:
        self.agent = agent
        self.settings = settings
        self.options = options or AgentOptions.from_settings(settings)
        self._run = AgentRun(agent=agent, options=self.options)
        # Injected by open_app (which closes it); direct callers get the settings' store (or
        # sessions_path's SQLite file), owned and closed by this object.
        self._owns_sessions = sessions is None
        self.sessions = sessions or open_sessions(settings, path=sessions_path)
        self._saver = self.sessions.checkpointer
        self._graph = build_agent_graph().compile(checkpointer=self._saver)
        # A session's lock lives while a turn holds it, then goes: the table cannot grow with
        # every session id ever seen.
        self._locks: weakref.WeakValueDictionary[str, threading.Lock] = weakref.WeakValueDictionary()
        self._locks_guard = threading.Lock()

    # ------------------------------------------------------------------ public API
    def start(
        self,
        message: str | None = None,
        *,
        age: int | None = None,
        sex: str | None = None,
        image: bytes | None = None,
    ) -> TurnResult:
        """Open a consultation (optionally with the first message, demographics and an image)."""
        if age is not None and (not isinstance(age, int) or not 0 <= age <= 130):
            raise ValueError("age must be a whole number of years between 0 and 130")
        sex_code = _sex_code(sex)
        session_id = uuid.uuid4().hex
        try:
            text = clean_message(message, allow_empty=True)
            rejected = None
        except InputRejectedError as exc:
            text, rejected = "", str(exc)
        values = self._image_input(image)
        values.update({"new_text": text, "age": age, "sex": sex_code})
        with self._session_lock(session_id), outages.tracking() as degraded:
            with outages.atomic_turn(self._saver, session_id):  # a failed start leaves no session
                self._graph.invoke(values, self._config(session_id), context=self._run)
            result = self._with_degraded(self._result(session_id), degraded)
        if rejected:
            result = result.model_copy(update={"message": rejected, "status": "needs_input"})
        return result

    def send(self, session_id: str, message: str, *, image: bytes | None = None) -> TurnResult:
        """A free-text message from the patient (also an answer or a correction)."""
        return self._turn(session_id, message, kind="message", image=image)

    def answer(self, session_id: str, answer: str) -> TurnResult:
        """The patient's answer to the pending follow-up question (yes / no / don't know / a value).
        Raises NoPendingQuestionError when no question waits (checked under the session's lock)."""
        return self._turn(session_id, answer, kind="answer", image=None)

    def state(self, session_id: str) -> ConsultationState:
        values = self._values(session_id)
        return ConsultationState(
            session_id=session_id,
            age=values.get("age"),
            sex=values.get("sex"),
            transcript=[TranscriptEntry.model_validate(e) for e in values.get("transcript") or []],
            last=self._result(session_id),
        )

    def export(self, session_id: str) -> dict[str, Any]:
        """Transcript, findings and differential as plain JSON."""
        values = self._values(session_id)
        lexicon = self.agent.lexicon
        findings = [{**o, "name": lexicon.name(o["finding_id"])} for o in values.get("findings") or []]
        return {
            "session_id": session_id,
            "exported_at": datetime.now(UTC).isoformat(),
            "age": values.get("age"),
            "sex": values.get("sex"),
            "status": values.get("status"),
            "transcript": list(values.get("transcript") or []),
            "findings": findings,
            "questions_asked": list(values.get("asked") or []),
            "pending_question": values.get("pending"),
            "differential": list(values.get("differential") or []),
            "passages": list(values.get("passages") or []),
            "image_findings": list(values.get("image_findings") or []),
            "urgent_reasons": list(values.get("urgent_reasons") or []),
            "next_steps": list(values.get("next_steps") or []),
            "disclaimer": DISCLAIMER,
        }

    def exists(self, session_id: str) -> bool:
        return self._saver.get_tuple(self._config(session_id)) is not None

    def close(self) -> None:
        if self._owns_sessions:
            self.sessions.close()

    def __enter__(self) -> Consultation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _turn(self, session_id: str, text: str, *, kind: str, image: bytes | None) -> TurnResult:
        self._require(session_id)
        try:
            cleaned = clean_message(text, allow_empty=image is not None)
        except InputRejectedError as exc:
            current = self._result(session_id)
            return current.model_copy(update={"message": str(exc), "status": "needs_input"})
        image_input = self._image_input(image)
        config = self._config(session_id)
        with self._session_lock(session_id), outages.tracking() as degraded:
            snapshot = self._graph.get_state(config)
            waiting = bool(snapshot.interrupts)
            if kind == "answer" and not waiting:
                raise NoPendingQuestionError("this consultation has no pending question to answer")
            if waiting:
                resume: Json = {"kind": kind, "text": cleaned}
                if image_input.get("new_image_findings"):
                    resume["image_findings"] = image_input["new_image_findings"]
                if image_input.get("image_note"):
                    resume["image_note"] = image_input["image_note"]
                graph_input: Any = Command(resume=resume)
            else:
                image_input["new_text"] = cleaned
                graph_input = image_input
            # A run that fails (graph down mid-turn) is undone: the message can be sent again.
            with outages.atomic_turn(self._saver, session_id):
                self._graph.invoke(graph_input, config, context=self._run)
            return self._with_degraded(self._result(session_id), degraded)

    @staticmethod
    def _with_degraded(result: TurnResult, degraded: list[str]) -> TurnResult:
        if not degraded:
            return result
        message = outages.with_note(result.message, degraded)
        return result.model_copy(update={"degraded": list(degraded), "message": message})

    def _image_input(self, image: bytes | None) -> TurnInput:
        if image is None:
            return {"image_note": None}
        analyzer = self.agent.image_analyzer
        if analyzer is None:
            reason = self.agent.image_disabled_reason or "no image model is available"
            return {"image_note": f"Image analysis is disabled: {reason}. The image was not used."}
        try:
            found = analyzer.analyze(image, list(self.agent.lexicon.findings.values()))
        except Exception as exc:  # a bad upload must not end the consultation
            log.info("image analysis failed: %s", type(exc).__name__)
            return {"image_note": f"The image could not be analysed ({exc}). It was not used."}
        note = (
            "Image findings: " + ", ".join(f"{f.label} ({f.probability:.0%})" for f in found)
            if found
            else "The image analysis found no imaging findings above the threshold."
        )
        return {"new_image_findings": [f.model_dump(mode="json") for f in found], "image_note": note}

    def _config(self, session_id: str) -> Any:
        return {"configurable": {"thread_id": session_id}}

    @contextlib.contextmanager
    def _session_lock(self, session_id: str) -> Iterator[None]:
        with self._locks_guard:
            lock = self._locks.get(session_id)
            if lock is None:
                lock = self._locks[session_id] = threading.Lock()
        # This process's threads queue on the in-process lock (no connection held while they
        # wait); then the store's lock keeps other replicas out for the whole turn.
        with lock, self.sessions.lock(session_id):
            yield

    def _require(self, session_id: str) -> None:
        if not isinstance(session_id, str) or not session_id or not self.exists(session_id):
            raise SessionNotFoundError(session_id)

    def _values(self, session_id: str) -> AgentState:
        self._require(session_id)
        return cast(AgentState, dict(self._graph.get_state(self._config(session_id)).values))

    def _result(self, session_id: str) -> TurnResult:
        values = self._values(session_id)
        follow_up = pending(values)
        status: Any = values.get("status") or "needs_input"
        message = values.get("message") or ""
        if follow_up is not None and not message:
            message = question_message(follow_up)
        answered = follow_up is None and status in ("answered", "urgent")
        return TurnResult(
            session_id=session_id,
            status=status,
            message=message,
            follow_up=follow_up,
            differential=ranked(values),
            findings=observations(values),
            passages=passages(values) if answered else [],
            image_findings=image_findings(values),
            urgent=bool(values.get("urgent_reasons")),
            urgent_reasons=list(values.get("urgent_reasons") or []),
            next_steps=list(values.get("next_steps") or []) if answered else [],
            disclaimer=DISCLAIMER,
            questions_asked=len(values.get("asked") or []),
            age=values.get("age"),
            sex=values.get("sex"),
        )


def _sex_code(sex: str | None) -> Sex | None:
    if sex is None:
        return None
    s = str(sex).strip().lower()
    if s in ("m", "male", "man"):
        return "M"
    if s in ("f", "female", "woman"):
        return "F"
    raise ValueError("sex must be 'M' or 'F' (or None when unknown)")
