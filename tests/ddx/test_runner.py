"""The evaluation loop on a fake graph and a scripted fake agent (logic only; real runs are in
test_integration.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.contracts import FollowUp, TurnResult
from assistant.settings import Settings
from eval.ddx.evaluate import evaluate_with_store
from eval.ddx.generator import generate_patients
from eval.ddx.policies import (
    AgentPolicy,
    BaselinePolicy,
    GraphPolicy,
    InquiryConfig,
    NoQuestionsPolicy,
    Policy,
    RandomQuestionsPolicy,
)
from eval.ddx.report import to_markdown, write_report
from eval.ddx.runner import evaluate
from kg.ddxplus.definitions import DDXPlusDefinitions
from kg.ddxplus.mapping import DiseaseMapper
from kg.ddxplus.records import Patient, PatientFileError, write_patients
from kg.models import RankedDisease, StopRule
from tests.fixtures.ddx import SYMCAT_ONLY_FINDING, FakeDdxGraph


class ScriptedConsultation:
    """Asks the graph's questions like the agent would, with words in between."""

    def __init__(self, graph: FakeDdxGraph, config: InquiryConfig) -> None:
        self.graph = graph
        self.config = config
        self.answers: list[str] = []
        self.sessions: dict[str, GraphPolicy] = {}

    def _turn(self, session: str, asked: list[str], ranked: list[tuple[str, float]]) -> TurnResult:
        differential = [RankedDisease(disease_id=d, name=d, probability=p, log_score=0.0) for d, p in ranked]
        if len(asked) < 2:
            finding = ["E_66", SYMCAT_ONLY_FINDING][len(asked)]
            return TurnResult(
                session_id=session,
                status="asking",
                message="?",
                follow_up=FollowUp(finding_id=finding, text="?", graph_text="?"),
                differential=differential,
            )
        return TurnResult(session_id=session, status="answered", message="done", differential=differential)

    def start(
        self, message: str | None = None, *, age: int | None = None, sex: str | None = None
    ) -> TurnResult:
        assert message and message.startswith("I ") and age is not None and sex in ("M", "F")
        self.asked: list[str] = []
        return self._turn("s1", self.asked, [("D00", 0.9)])

    def answer(self, session_id: str, answer: str) -> TurnResult:
        self.answers.append(answer)
        self.asked.append(answer)
        return self._turn(session_id, self.asked, [("D01", 0.6), ("D00", 0.4)])


@pytest.fixture
def patients(ddx_definitions: DDXPlusDefinitions) -> list[Patient]:
    return generate_patients(ddx_definitions, per_condition=1, seed=3)[:12]


def test_all_policies_on_the_same_patients(
    fake_ddx_graph: FakeDdxGraph, ddx_definitions: DDXPlusDefinitions, patients: list[Patient], tmp_path: Path
) -> None:
    config = InquiryConfig(stop=StopRule(max_questions=6))
    agent = ScriptedConsultation(fake_ddx_graph, config)
    policies: list[Policy] = [
        AgentPolicy(agent),
        BaselinePolicy(fake_ddx_graph.table),
        GraphPolicy(fake_ddx_graph),  # type: ignore[arg-type]
        RandomQuestionsPolicy(fake_ddx_graph, seed=1),  # type: ignore[arg-type]
        NoQuestionsPolicy(fake_ddx_graph),  # type: ignore[arg-type]
    ]
    mapper = DiseaseMapper(fake_ddx_graph.diseases(), ddx_definitions)
    assert mapper.unmapped_conditions() == []
    run = evaluate(
        patients,
        policies,
        mapper=mapper,
        definitions=ddx_definitions,
        finding_names={},
        config=config,
    )
    assert list(run.summaries) == ["full", "baseline", "graph", "random", "none"]
    assert all(s.n == len(patients) and s.errors == 0 for s in run.summaries.values())
    # The fake agent asked 2 questions per patient; answers went back as words.
    assert run.summaries["full"].mean_questions == 2
    assert "I don't know." in agent.answers and ("No." in agent.answers or "Yes." in agent.answers)
    assert run.summaries["none"].mean_questions == 0
    for name in ("baseline", "graph", "random"):
        assert 0 < run.summaries[name].mean_questions <= config.stop.max_questions
    # Asking helps on this fake graph built from the same links the patients come from.
    assert run.summaries["baseline"].top1 > run.summaries["none"].top1
    assert run.summaries["graph"].top1 >= run.summaries["none"].top1
    assert len(run.episodes) == 5 * len(patients)

    json_path, md_path = write_report(run, tmp_path)
    data = json.loads(json_path.read_text())
    assert set(data["summaries"]) == set(run.summaries)
    assert "GTPA@1" in md_path.read_text() and "| no questions |" in to_markdown(run)


def test_a_failing_policy_is_recorded_not_fatal(
    fake_ddx_graph: FakeDdxGraph, ddx_definitions: DDXPlusDefinitions, patients: list[Patient]
) -> None:
    class Broken:
        def start(self, *args: object, **kwargs: object) -> TurnResult:
            raise RuntimeError("server went away")

    run = evaluate(
        patients[:3],
        [AgentPolicy(Broken())],
        mapper=DiseaseMapper(fake_ddx_graph.diseases(), ddx_definitions),
        definitions=ddx_definitions,
        finding_names={},
        config=InquiryConfig(),
    )
    summary = run.summaries["full"]
    assert summary.errors == 3 and summary.top1 == 0
    assert "server went away" in (run.episodes[0]["error"] or "")


def test_french_evidence_codes_are_refused_clearly(
    fake_ddx_graph: FakeDdxGraph, ddx_definitions: DDXPlusDefinitions, patients: list[Patient]
) -> None:
    french = Patient("fr:1", 30, "M", "Bronchite", ("fievre", "toux"), "fievre", (("Bronchite", 1.0),))
    with pytest.raises(PatientFileError, match="English release"):
        evaluate(
            [french],
            [NoQuestionsPolicy(fake_ddx_graph)],  # type: ignore[arg-type]
            mapper=DiseaseMapper(fake_ddx_graph.diseases(), ddx_definitions),
            definitions=ddx_definitions,
            finding_names={},
            config=InquiryConfig(),
        )


def test_unknown_pathology_is_skipped_with_a_reason(
    fake_ddx_graph: FakeDdxGraph, ddx_definitions: DDXPlusDefinitions, patients: list[Patient]
) -> None:
    odd = Patient("x:1", 30, "M", "Dragon pox", ("E_91",), "E_91", ())
    run = evaluate(
        [odd, patients[0]],
        [NoQuestionsPolicy(fake_ddx_graph)],  # type: ignore[arg-type]
        mapper=DiseaseMapper(fake_ddx_graph.diseases(), ddx_definitions),
        definitions=ddx_definitions,
        finding_names={},
        config=InquiryConfig(),
    )
    assert run.summaries["none"].n == 1
    assert run.skipped == [{"patient": "x:1", "reason": "unknown pathology 'Dragon pox'"}]


def test_settings_stop_rule_reaches_the_store_and_the_record(
    fake_ddx_graph: FakeDdxGraph, patients: list[Patient], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MEDKG_AGENT__* -> Settings.agent.stop -> InquiryConfig -> GraphStore.next_step, and the
    results' config keeps the rule's fields flat (same keys as before the StopRule model)."""
    monkeypatch.setenv("MEDKG_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("MEDKG_AGENT__MAX_QUESTIONS", "3")
    monkeypatch.setenv("MEDKG_AGENT__POSTERIOR_THRESHOLD", "0.9")
    settings = Settings(data_dir=tmp_path)
    expected = StopRule(max_questions=3, posterior_threshold=0.9)
    path = tmp_path / "patients.csv"
    write_patients(path, patients[:4])
    run = evaluate_with_store(fake_ddx_graph, settings, path, policies=["graph"])  # type: ignore[arg-type]
    assert fake_ddx_graph.rules and set(fake_ddx_graph.rules) == {expected}
    assert all(e["questions"] <= 3 for e in run.episodes)
    assert {k: run.config[k] for k in (*StopRule.model_fields, "top_k")} == {
        **expected.model_dump(),
        "top_k": 10,
    }
    # An explicit rule (the CLI's --max-questions / --threshold) replaces the settings' one.
    fake_ddx_graph.rules.clear()
    evaluate_with_store(fake_ddx_graph, settings, path, policies=["graph"], stop=StopRule(max_questions=1))  # type: ignore[arg-type]
    assert set(fake_ddx_graph.rules) == {StopRule(max_questions=1)}
