"""Image questions answered from scored findings."""

from __future__ import annotations

import pytest

from assistant.image_qa import answer_image_question, match_label
from vlm.zero_shot import FindingLabel, ImageFinding, standard_cxr_labels


def scored(**probabilities: float) -> list[ImageFinding]:
    return [
        ImageFinding(label=label.name, finding_id=label.id, probability=probabilities.get(label.id[4:], 0.1))
        for label in standard_cxr_labels().labels
    ]


@pytest.mark.parametrize(
    ("question", "label"),
    [
        ("Is there an effusion?", "pleural effusion"),
        ("any pleural effusions on this film", "pleural effusion"),
        ("Pneumothorax?", "pneumothorax"),
        ("Is the heart enlarged? cardiomegaly", "cardiomegaly"),
        ("do you see a lung nodule", "pulmonary nodule"),
        ("Is there atelectasis at the bases?", "atelectasis"),
    ],
)
def test_questions_match_labels_by_name_and_synonym(question: str, label: str) -> None:
    match = match_label(question, standard_cxr_labels().labels)
    assert match is not None and match.name == label


def test_answers_follow_the_probability() -> None:
    findings = scored(pleural_effusion=0.82, pneumothorax=0.4, cardiomegaly=0.05)
    yes = answer_image_question("Is there an effusion?", findings)
    assert yes.verdict == "likely present" and yes.probability == 0.82 and "82%" in yes.answer
    maybe = answer_image_question("pneumothorax?", findings)
    assert maybe.verdict == "possible" and "40%" in maybe.answer
    no = answer_image_question("is there cardiomegaly", findings)
    assert no.verdict == "not detected" and "5%" in no.answer
    assert yes.finding_id == "cxr:pleural_effusion"


def test_only_above_threshold_findings_given() -> None:
    findings = [f for f in scored(pleural_effusion=0.9) if f.probability >= 0.5]
    answer = answer_image_question("any pneumothorax?", findings)
    assert answer.verdict == "not detected" and "above the 50%" in answer.answer


def test_unmatched_question_and_graph_labels() -> None:
    findings = scored(pleural_effusion=0.9)
    assert answer_image_question("what is the weather like?", findings).verdict == "no match"
    graph = [FindingLabel(id="F:7", name="Kerley B lines", synonyms=("septal lines",))]
    graph_findings = [ImageFinding(label="Kerley B lines", finding_id="F:7", probability=0.7)]
    answer = answer_image_question("Are there septal lines?", graph_findings, labels=graph)
    assert answer.verdict == "likely present" and answer.label == "Kerley B lines"
    unscored = answer_image_question("Are there septal lines?", [], labels=graph)
    assert unscored.verdict == "not assessed"
