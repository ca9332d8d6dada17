"""Answer extraction on a table of tricky model outputs."""

from __future__ import annotations

import pytest

from eval.qa.extraction import extract_answer

ABCD = {
    "A": "Disclose the error to the patient and put it in the operative report",
    "B": "Tell the attending that he cannot fail to disclose this mistake",
    "C": "Report the physician to the ethics committee",
    "D": "Refuse to dictate the operative report",
}
TEN = {
    "A": "68 Gy", "B": "55 Gy", "C": "62 Gy", "D": "50 Gy", "E": "65 Gy",
    "F": "64 Gy", "G": "60 Gy", "H": "66 Gy", "I": "72 Gy", "J": "70 Gy",
}  # fmt: skip
NESTED = {
    "A": "Total knee arthroplasty",
    "B": "Total knee arthroplasty (TKA)",
    "C": "High tibial osteotomy",
    "D": "Lateral release of the patella",
}
YNM = {"yes": "yes", "no": "no", "maybe": "maybe"}

CASES: list[tuple[str, dict[str, str], str | None]] = [
    # bare and bracketed letters
    ("B", ABCD, "B"),
    ("(B)", ABCD, "B"),
    ("B.", ABCD, "B"),
    ("B) Tell the attending that he cannot fail to disclose this mistake", ABCD, "B"),
    ("  **C**", ABCD, "C"),
    ("[D]", ABCD, "D"),
    ("Option C", ABCD, "C"),
    ("B Tell the attending that he cannot fail to disclose this mistake", ABCD, "B"),
    # explicit statements, last one wins
    ("Answer: B", ABCD, "B"),
    ("answer:(C)", ABCD, "C"),
    ("The answer is B.", ABCD, "B"),
    ("The correct answer is option D because the resident must refuse.", ABCD, "D"),
    ("Let's think. A is wrong since ... C is tempting. So the answer is (B).", ABCD, "B"),
    ("The answer is A. Wait, reconsidering, the final answer is C", ABCD, "C"),
    ("Final Answer: **D**", ABCD, "D"),
    ("\\boxed{C}", ABCD, "C"),
    ("I would choose B here.", ABCD, "B"),
    ("Option D is the correct answer.", ABCD, "D"),
    ("The best option is (A)", ABCD, "A"),
    ("The answer is Report the physician to the ethics committee.", ABCD, "C"),
    # JSON
    ('{"answer": "B"}', ABCD, "B"),
    ('Here you go: {"step_by_step_thinking": "...", "answer_choice": "(D)"}', ABCD, "D"),
    ("{'answer': 'C'}", ABCD, "C"),
    ('{"answer": "Refuse to dictate the operative report"}', ABCD, "D"),
    # option text
    ("Tell the attending that he cannot fail to disclose this mistake.", ABCD, "B"),
    ("I think you should report the physician to the ethics committee.", ABCD, "C"),
    ("Total knee arthroplasty (TKA) is the usual cause.", NESTED, "B"),
    # ten options, and letters that are also words
    ("H", TEN, "H"),
    ("The recommended dose is 66 Gy.", TEN, "H"),
    ("I think the answer is J.", TEN, "J"),
    ("I.", TEN, "I"),
    # think blocks the client failed to strip
    ("<think>A? no, C.</think>The answer is D", ABCD, "D"),
    ("partial reasoning A or C</think> B", ABCD, "B"),
    # unparseable: no commitment, or several candidates, or prose that merely starts with "A"
    ("A 45-year-old man presents with chest pain.", ABCD, None),
    ("I am not sure.", ABCD, None),
    ("Both (A) and (C) could be right.", ABCD, None),
    ("", ABCD, None),
    ("The answer is not clear.", ABCD, None),
    # yes / no / maybe
    ("yes", YNM, "yes"),
    ("No.", YNM, "no"),
    ("Maybe, the evidence is mixed.", YNM, "maybe"),
    ("The answer is no", YNM, "no"),
    ("Based on the results, yes, it does. Final answer: maybe", YNM, "maybe"),
    ('{"answer": "Yes"}', YNM, "yes"),
    ("The study shows a clear benefit. Answer: yes", YNM, "yes"),
    ("It depends on many factors.", YNM, None),
    ("Yes and no.", YNM, "yes"),
]


@pytest.mark.parametrize(("output", "options", "expected"), CASES)
def test_extracts_the_committed_answer(output: str, options: dict[str, str], expected: str | None) -> None:
    result = extract_answer(output, options)
    assert result.answer == expected, f"{output!r} -> {result}"
    assert result.parsed == (expected is not None)


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 30


def test_unparseable_reports_method_none() -> None:
    assert extract_answer("no idea", ABCD).method == "none"


ANSWER_FIRST: list[tuple[str, dict[str, str], str | None]] = [
    ("A. Renal artery stenosis\n\nThe correct answer is D. Urethral", ABCD, "A"),
    ("(C) Report the physician\nAnswer: B", ABCD, "C"),
    ("The answer is B.", ABCD, "B"),  # no leading label: the statement still counts
    ("A 45-year-old man", ABCD, None),
    ("Yes, yes, no, maybe, maybe", YNM, "yes"),
    ("No. The final answer is maybe", YNM, "no"),
]


@pytest.mark.parametrize(("output", "options", "expected"), ANSWER_FIRST)
def test_answer_only_modes_take_the_leading_label(
    output: str, options: dict[str, str], expected: str | None
) -> None:
    assert extract_answer(output, options, answer_first=True).answer == expected


def test_chain_of_thought_takes_the_last_statement() -> None:
    assert extract_answer("A. Renal artery stenosis\n\nThe correct answer is D.", ABCD).answer == "D"
