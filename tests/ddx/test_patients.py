"""Reading and writing patients in the official DDXPlus CSV format."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pytest

from kg.ddxplus.definitions import DDXPlusDefinitions
from kg.ddxplus.records import (
    PatientFileError,
    parse_differential,
    parse_evidences,
    read_patients,
    split_evidence,
    write_patients,
)


def test_reads_official_rows(official_sample_csv: Path) -> None:
    first, second = read_patients(official_sample_csv)
    assert (first.age, first.sex, first.pathology, first.initial_evidence) == (18, "M", "URTI", "E_91")
    assert len(first.evidences) == 19
    values = first.evidence_values()
    assert values["E_91"] == []  # binary
    assert values["E_55"] == ["V_89", "V_108", "V_167"]  # multi-choice keeps every value
    assert values["E_56"] == ["4"]  # 0-10 scale
    assert first.differential[0] == ("Bronchitis", pytest.approx(0.19171203430383882))
    assert [name for name, _ in first.differential][-1] == "Chagas"
    assert second.pathology == "Pneumonie"  # French release names are kept as written


def test_split_and_parse_helpers() -> None:
    assert split_evidence("E_55_@_V_89") == ("E_55", "V_89")
    assert split_evidence("E_56_@_7") == ("E_56", "7")
    assert split_evidence("E_91") == ("E_91", None)
    assert parse_evidences("['E_1', 'E_2_@_V_3']") == ("E_1", "E_2_@_V_3")
    # Sorted by probability, highest first, whatever the file order.
    assert parse_differential("[['A', 0.1], ['B', 0.7]]") == (("B", 0.7), ("A", 0.1))
    assert parse_differential("") == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[['A', 'x']]", "not a number"),
        ("[['A']]", "pathology, probability"),
        ("not a list", "Python list"),
    ],
)
def test_bad_differential_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_differential(text)


def test_zip_gz_and_limit(tmp_path: Path, official_sample_csv: Path) -> None:
    raw = official_sample_csv.read_bytes()
    archive = tmp_path / "release_test_patients.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("release_test_patients", raw)  # the official archives hold one extension-less file
    gz = tmp_path / "patients.csv.gz"
    gz.write_bytes(gzip.compress(raw))
    assert [p.pathology for p in read_patients(archive)] == ["URTI", "Pneumonie"]
    assert [p.pathology for p in read_patients(gz)] == ["URTI", "Pneumonie"]
    assert len(read_patients(archive, limit=1)) == 1


def test_bad_files_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(PatientFileError, match="not found"):
        read_patients(tmp_path / "missing.csv")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b\n1,2\n")
    with pytest.raises(PatientFileError, match="missing column"):
        read_patients(wrong)
    bad_row = tmp_path / "bad.csv"
    bad_row.write_text(
        "AGE,SEX,PATHOLOGY,EVIDENCES,INITIAL_EVIDENCE,DIFFERENTIAL_DIAGNOSIS\n"
        '30,M,URTI,"[\'E_91\']",E_91,"[]"\n'
        'x,M,URTI,"[\'E_91\']",E_91,"[]"\n'
    )
    with pytest.raises(PatientFileError, match="row 2: AGE"):
        read_patients(bad_row)
    broken_zip = tmp_path / "broken.zip"
    broken_zip.write_bytes(b"PK not really")
    with pytest.raises(PatientFileError, match="cannot read"):
        read_patients(broken_zip)


def test_write_then_read_round_trips(tmp_path: Path, official_sample_csv: Path) -> None:
    patients = read_patients(official_sample_csv)
    for name in ("out.csv", "out.csv.gz"):
        write_patients(tmp_path / name, patients)
        again = read_patients(tmp_path / name)
        assert [
            (p.age, p.sex, p.pathology, p.evidences, p.initial_evidence, p.differential) for p in again
        ] == [(p.age, p.sex, p.pathology, p.evidences, p.initial_evidence, p.differential) for p in patients]
    header = (tmp_path / "out.csv").read_text().splitlines()[0]
    assert header == "AGE,DIFFERENTIAL_DIAGNOSIS,SEX,PATHOLOGY,EVIDENCES,INITIAL_EVIDENCE"


def test_pathology_names_resolve_in_both_languages(ddx_definitions: DDXPlusDefinitions) -> None:
    assert ddx_definitions.condition("URTI") is ddx_definitions.condition("IVRS ou virémie")
    assert ddx_definitions.condition("pneumonie") is ddx_definitions.condition("Pneumonia")
    assert ddx_definitions.condition("Not a disease") is None
    assert len(ddx_definitions.conditions) == 49 and len(ddx_definitions.evidences) == 223


def test_french_release_rows_are_read_in_english_codes(tmp_path: Path) -> None:
    """The original French release's codes (the DDXPlus validation files) read as the graph's ids."""
    path = tmp_path / "fr.csv"
    header = "AGE,DIFFERENTIAL_DIAGNOSIS,SEX,PATHOLOGY,EVIDENCES,INITIAL_EVIDENCE\n"
    row = (
        "65,\"[['Laryngite aigue', 0.7]]\",M,Laryngite aigue,"
        "\"['douleurxx', 'douleurxx_endroitducorps_@_pharynx', 'douleurxx_intens_@_5', "
        "'fievre', 'trav1_@_N']\","
        "fievre\n"
    )
    path.write_text(header + row, encoding="utf-8")
    (patient,) = read_patients(path)
    assert patient.initial_evidence == "E_91"
    assert patient.evidences == ("E_53", "E_55_@_V_148", "E_56_@_5", "E_91", "E_204_@_V_10")
    path.write_text(header + row.replace("fievre\n", "not_a_code\n"), encoding="utf-8")
    with pytest.raises(PatientFileError, match=r"data row 1: unknown DDXPlus evidence code 'not_a_code'"):
        read_patients(path)
