"""The LangGraph agent.

intake -> extract_findings -> differential -> decide -> ask | retrieve_evidence -> answer.

``ask`` pauses the run with ``interrupt()``; the facade resumes it with
``Command(resume={"kind": "answer" | "message", "text": ...})``. The answer updates (or
corrects) the findings and the loop goes back to the differential. Every step is
checkpointed, so a new process continues a session where the old one stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal, Protocol

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from assistant.agent import language, render
from assistant.agent.context import AgentContext, AgentRun
from assistant.agent.extraction import (
    embedding_mentions,
    extract_demographics,
    lexicon_mentions,
    map_answer,
    mention_to_observation,
    merge_mentions,
    tokenize,
)
from assistant.agent.state import (
    AgentOptions,
    AgentState,
    Json,
    TurnInput,
    TurnOutput,
    dump,
    merge_observations,
    observations,
    passages,
    pending,
    ranked,
)
from assistant.contracts import FollowUp
from assistant.safety import looks_like_injection, urgent_reasons
from kg.models import Differential, Evidence, Observation
from kg.store import UnknownFindingError

log = logging.getLogger(__name__)

INJECTION_NOTE = (
    "_Note: part of your message looked like instructions to the assistant or someone else's "
    "words and was ignored; the rest was treated as a description only. The assistant's rules "
    "do not change._"
)
NO_FINDINGS_MESSAGE = (
    "I could not match what you wrote to symptoms I know. Could you describe your main symptoms "
    "in a few words (for example: 'fever, cough and a sore throat for three days')?"
)
GREETING = (
    "Hello. Please describe what brings you here: your main symptoms, how long you have had them, "
    "and your age and sex if you are comfortable sharing them."
)


def extract_observations(
    agent: AgentContext,
    text: str,
    options: AgentOptions,
    *,
    exclude: set[str] | None = None,
    exact_only: bool = False,
) -> list[Observation]:
    """Findings in free text: lexicon + embeddings, polarity in code, the LLM only confirms fuzzy ones."""
    lexicon = agent.lexicon
    tokens = tokenize(text)
    exact = lexicon_mentions(tokens, lexicon)
    exact_ids = {m.finding_id for m in exact}
    fuzzy: list[Any] = []
    embed = None if exact_only else agent.embedder
    if embed is not None:
        fuzzy = embedding_mentions(
            text, lexicon, embed, threshold=options.embedding_threshold, exclude=exact_ids
        )
    # Without the LLM only the best match of a clause is kept, and only when it is close.
    accepted = [m for m in fuzzy if m.score >= options.embedding_accept and m.rank == 0]
    unsure = [m for m in fuzzy if m not in accepted]
    if unsure and options.llm_extraction:
        confirmed = language.confirm_candidates(
            agent.chat_model,
            text,
            [lexicon.findings[m.finding_id] for m in unsure],
            max_tokens=options.llm_max_tokens,
        )
        if confirmed:
            accepted += [m for m in unsure if m.finding_id in confirmed]
    merged = merge_mentions([*exact, *accepted])
    out = [mention_to_observation(m) for fid, m in merged.items() if not exclude or fid not in exclude]
    return out


def _evidence(state: AgentState) -> Evidence:
    age = state.get("age")
    sex = state.get("sex")
    return Evidence(
        observations=[o for o in observations(state)],
        age=age if isinstance(age, int) and 0 <= age <= 130 else None,
        sex=sex if sex in ("M", "F") else None,  # type: ignore[arg-type]
    )


class AgentNodes:
    """The nodes over one run's context (built per node call from LangGraph's Runtime)."""

    def __init__(self, agent: AgentContext, options: AgentOptions) -> None:
        self.agent = agent
        self.options = options

    # ------------------------------------------------------------------ intake
    def intake(self, state: AgentState) -> Json:
        text = state.get("new_text") or ""
        update: Json = {"notes": [], "urgent_new": False}
        if text:
            update["transcript"] = [{"role": "patient", "text": text}]
            demo = extract_demographics(text)
            if state.get("age") is None and demo.age is not None:
                update["age"] = demo.age
            if state.get("sex") is None and demo.sex is not None:
                update["sex"] = demo.sex
            if looks_like_injection(text):
                update["notes"] = [INJECTION_NOTE]
        new_images = state.get("new_image_findings") or []
        if new_images:
            image_obs = _image_observations(new_images)
            merged = merge_observations(observations(state), image_obs)
            update["findings"] = dump(merged)
            update["image_findings"] = list(state.get("image_findings") or []) + list(new_images)
            update["new_image_findings"] = []
        return update

    @staticmethod
    def route_intake(state: AgentState) -> Literal["extract_findings", "differential", "greet"]:
        if state.get("new_text"):
            return "extract_findings"
        # An image alone (no text) still updates the differential.
        return "differential" if state.get("findings") and state.get("image_findings") else "greet"

    def greet(self, state: AgentState) -> Json:
        has_findings = bool(state.get("findings"))
        message = GREETING if not has_findings else "Is there anything else you would like to add?"
        return {
            "status": "needs_input",
            "message": message,
            "transcript": [{"role": "assistant", "text": message}],
        }

    # ------------------------------------------------------------------ findings
    def extract_findings(self, state: AgentState) -> Json:
        text = state.get("new_text") or ""
        new = extract_observations(self.agent, text, self.options)
        existing = observations(state)
        merged = merge_observations(existing, new)
        return {"findings": dump(merged), "new_text": ""}

    # ------------------------------------------------------------------ differential
    def differential(self, state: AgentState) -> Json:
        evidence = _evidence(state)
        if not any(o.present for o in evidence.observations):
            return {"differential": [], "entropy": 0.0}
        try:
            diff = self.agent.graph.differential(evidence, top_k=self.options.differential_top_k)
        except UnknownFindingError:
            # A finding vanished from the graph (reloaded with another version): drop unknown ones.
            known = {f.id for f in self.agent.graph.findings([o.finding_id for o in evidence.observations])}
            evidence = evidence.model_copy(
                update={"observations": [o for o in evidence.observations if o.finding_id in known]}
            )
            diff = self.agent.graph.differential(evidence, top_k=self.options.differential_top_k)
        return {
            "differential": dump(diff.diseases),
            "entropy": diff.entropy,
        }

    # ------------------------------------------------------------------ decide
    def decide(self, state: AgentState) -> Json:
        diseases = ranked(state)
        obs = observations(state)
        texts = [e["text"] for e in (state.get("transcript") or []) if e.get("role") == "patient"][-1:]
        reasons = urgent_reasons(obs, self.agent.lexicon.findings, diseases, texts)
        known = list(state.get("urgent_reasons") or [])
        fresh = [r for r in reasons if r not in known]
        update: Json = {"urgent_reasons": known + fresh, "urgent_new": bool(fresh), "pending": None}
        if not diseases:
            message = NO_FINDINGS_MESSAGE
            if fresh:
                message = render.urgent_block(known + fresh) + "\n\n" + message
            update.update(
                status="urgent" if fresh else "needs_input",
                stop_reason="no_candidates",
                message=message,
                transcript=[{"role": "assistant", "text": message}],
            )
            return update
        if fresh and self.options.stop_on_urgent:
            update["stop_reason"] = "urgent"
            return update
        asked = list(state.get("asked") or [])
        if len(asked) >= self.options.stop.max_questions:
            update["stop_reason"] = "budget"
            return update
        evidence = _evidence(state)
        diff = Differential(diseases=diseases, entropy=float(state.get("entropy") or 0.0))
        step = self.agent.graph.next_step(evidence, diff, self.options.stop)
        question = step.question
        if question is None or question.finding.id in asked:
            update["stop_reason"] = step.stop_reason if question is None else "low_gain"
            return update
        finding = question.finding
        graph_text = question.text or finding.question or f"Do you have {finding.name.lower()}?"
        text = graph_text
        if self.options.llm_phrasing:
            key = f"{finding.id}\x1f{graph_text}"
            phrased = self.agent.phrasings.get(key)
            if phrased is None:
                phrased = language.phrase_question(
                    self.agent.chat_model, finding, graph_text, banned=self.agent.disease_names
                )
                if phrased:
                    self.agent.phrasings[key] = phrased
            text = phrased or graph_text
        follow_up = FollowUp(
            finding_id=finding.id,
            text=text,
            graph_text=graph_text,
            choices=render.follow_up_choices(finding),
            information_gain=round(question.information_gain, 4),
        )
        message = render.question_message(follow_up)
        parts = []
        if fresh:
            parts.append(render.urgent_block(known + fresh))
        parts.extend(state.get("notes") or [])
        parts.append(message)
        full = "\n\n".join(parts)
        update.update(
            pending=follow_up.model_dump(mode="json"),
            status="urgent" if fresh else "asking",
            stop_reason="asking",
            message=full,
            transcript=[{"role": "assistant", "text": full}],
        )
        return update

    @staticmethod
    def route_decide(state: AgentState) -> Literal["ask", "retrieve_evidence", "__end__"]:
        if state.get("pending"):
            return "ask"
        if not state.get("differential"):
            return "__end__"
        return "retrieve_evidence"

    # ------------------------------------------------------------------ ask
    def ask(self, state: AgentState) -> Json:
        waiting = pending(state)
        assert waiting is not None  # route_decide goes to "ask" only with a pending question
        reply = interrupt(waiting.model_dump(mode="json"))
        kind, text = _reply_parts(reply)
        finding = self.agent.lexicon.findings.get(waiting.finding_id)
        if finding is None:
            found = self.agent.graph.findings([waiting.finding_id])
            finding = found[0] if found else None
        update: Json = {"transcript": [{"role": "patient", "text": text}], "notes": [], "urgent_new": False}
        if looks_like_injection(text):
            update["notes"] = [INJECTION_NOTE]
        new: list[Observation] = []
        understood = False
        if isinstance(reply, dict) and reply.get("image_note"):
            update["image_note"] = str(reply["image_note"])
        image_obs = _image_observations(reply.get("image_findings") if isinstance(reply, dict) else None)
        if image_obs:
            update["image_findings"] = list(state.get("image_findings") or []) + list(reply["image_findings"])
        if finding is not None and (kind == "answer" or len(tokenize(text)) <= 8):
            mapping = map_answer(text, finding)
            understood = mapping.understood
            new.extend(mapping.observations)
        # Anything else said in the reply counts too ("no, but I do have a headache"). After an
        # understood answer only exact lexicon matches count: a value answer such as
        # "Yes: groin(R)" must not turn into fuzzy findings.
        if not understood:
            new.extend(extract_observations(self.agent, text, self.options))
        elif len(tokenize(text)) > 2 and (finding is None or finding.value_type == "binary"):
            new.extend(
                extract_observations(
                    self.agent, text, self.options, exclude={waiting.finding_id}, exact_only=True
                )
            )
        demo = extract_demographics(text) if not understood else None
        if demo is not None:
            if state.get("age") is None and demo.age is not None:
                update["age"] = demo.age
            if state.get("sex") is None and demo.sex is not None:
                update["sex"] = demo.sex
        asked = list(state.get("asked") or [])
        if understood:
            asked.append(waiting.finding_id)
        if not new:
            # Nothing usable: ask the same question again, explaining how to answer.
            message = "Sorry, I did not understand that answer.\n\n" + render.question_message(waiting)
            update.update(
                pending=waiting.model_dump(mode="json"),
                status="needs_input",
                message=message,
                transcript=update["transcript"] + [{"role": "assistant", "text": message}],
            )
            return update
        merged = merge_observations(merge_observations(observations(state), image_obs), new)
        update.update(findings=dump(merged), asked=asked, pending=None)
        return update

    @staticmethod
    def route_ask(state: AgentState) -> Literal["ask", "differential"]:
        return "ask" if state.get("pending") else "differential"

    # ------------------------------------------------------------------ evidence and answer
    def retrieve_evidence(self, state: AgentState) -> Json:
        retriever = self.agent.retriever
        if retriever is None or self.options.retrieval_k <= 0:
            return {"passages": []}
        diseases = ranked(state)[:3]
        complaint = _complaint(state)
        query = " ".join([complaint[:300], *(d.name for d in diseases)])
        try:
            found = retriever.search(query, k=self.options.retrieval_k)
        except Exception:  # evidence is optional; the answer must still come
            log.warning("retrieval failed", exc_info=True)
            found = []
        return {"passages": dump(found)}

    def answer(self, state: AgentState) -> Json:
        diseases = ranked(state)
        shown = diseases[: self.options.show_top]
        found = passages(state)
        obs = observations(state)
        lexicon = self.agent.lexicon
        present = [lexicon.name(o.finding_id) for o in obs if o.present]
        summary = None
        if self.options.llm_summary:
            summary = language.summarize(
                self.agent.chat_model,
                shown,
                present,
                _complaint(state),
                names=self.agent.disease_names,
                max_tokens=self.options.llm_max_tokens,
            )
        summary = summary or render.template_summary(shown)
        reasons = list(state.get("urgent_reasons") or [])
        fresh = bool(state.get("urgent_new"))
        steps = render.next_steps(shown, bool(reasons))
        notes = list(state.get("notes") or [])
        if state.get("image_note"):
            notes.append(f"_{state['image_note']}_")
        message = render.final_message(
            summary,
            shown,
            found,
            steps,
            limit=self.options.show_top,
            notes=notes,
            urgent_reasons=reasons if fresh else [],
        )
        return {
            "status": "urgent" if fresh else "answered",
            "message": message,
            "next_steps": steps,
            "transcript": [{"role": "assistant", "text": message}],
        }


def _image_observations(found: Any) -> list[Observation]:
    if not isinstance(found, list):
        return []
    return [
        Observation(
            finding_id=str(f["finding_id"]),
            present=True,
            source="image",
            confidence=max(0.0, min(1.0, float(f.get("probability", 0.0)))),
        )
        for f in found
        if isinstance(f, dict) and f.get("finding_id")
    ]


def _reply_parts(reply: Any) -> tuple[str, str]:
    if isinstance(reply, dict):
        return str(reply.get("kind", "answer")), str(reply.get("text", ""))
    return "answer", str(reply)


def _complaint(state: AgentState) -> str:
    texts = [e["text"] for e in (state.get("transcript") or []) if e.get("role") == "patient"]
    return texts[0] if texts else ""


class _RuntimeNode(Protocol):
    def __call__(self, state: AgentState, *, runtime: Runtime[AgentRun]) -> Json: ...


def _node(method: Callable[[AgentNodes, AgentState], Json]) -> _RuntimeNode:
    """A node reading its dependencies from the run's context (LangGraph injects ``runtime``)."""

    def run(state: AgentState, *, runtime: Runtime[AgentRun]) -> Json:
        return method(AgentNodes(runtime.context.agent, runtime.context.options), state)

    run.__name__ = method.__name__
    return run


def build_agent_graph() -> StateGraph[AgentState, AgentRun, TurnInput, TurnOutput]:
    """The agent's graph, free of dependencies: compile it once, invoke it with
    ``context=AgentRun(agent, options)``."""
    graph = StateGraph(AgentState, context_schema=AgentRun, input_schema=TurnInput, output_schema=TurnOutput)
    graph.add_node("intake", _node(AgentNodes.intake))
    graph.add_node("greet", _node(AgentNodes.greet))
    graph.add_node("extract_findings", _node(AgentNodes.extract_findings))
    graph.add_node("differential", _node(AgentNodes.differential))
    graph.add_node("decide", _node(AgentNodes.decide))
    graph.add_node("ask", _node(AgentNodes.ask))
    graph.add_node("retrieve_evidence", _node(AgentNodes.retrieve_evidence))
    graph.add_node("answer", _node(AgentNodes.answer))
    graph.add_edge(START, "intake")
    graph.add_conditional_edges("intake", AgentNodes.route_intake)
    graph.add_edge("greet", END)
    graph.add_edge("extract_findings", "differential")
    graph.add_edge("differential", "decide")
    graph.add_conditional_edges("decide", AgentNodes.route_decide)
    graph.add_conditional_edges("ask", AgentNodes.route_ask)
    graph.add_edge("retrieve_evidence", "answer")
    graph.add_edge("answer", END)
    return graph
