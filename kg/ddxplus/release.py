"""DDXPlus release codes: the French release's evidence/value/condition codes in English terms.

DDXPlus shipped first with French codes (``douleurxx_endroitducorps_@_pharynx``, pathology
``Pharyngite virale``), then with English ones (``E_55_@_V_137``, ``Viral pharyngitis``). The
graph uses the English codes; ``kg/data/ddxplus_french_codes.tsv`` (built by ``kg.ddxplus.build``
from the two releases' definition files, matched on the French question text and the
value meanings) lets records and statistics in the French codes be read too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

from kg.models import VALUE_SEPARATOR
from kg.sources import DATA_DIR, _tsv_rows

FRENCH_CODES_FILE = "ddxplus_french_codes.tsv"


class UnknownCodeError(ValueError):
    """A record names a code neither release defines."""


@dataclass(frozen=True)
class FrenchCodes:
    evidences: dict[str, str]  # French evidence name -> English E_xx
    values: dict[tuple[str, str], str]  # (English E_xx, French value code) -> English value code
    conditions: dict[str, str]  # French condition name -> English condition key

    def evidence(self, code: str) -> str:
        """An evidence code of either release (``fievre``, ``trav1_@_N``) in English codes."""
        base, sep, value = code.partition(VALUE_SEPARATOR)
        english = base if base.startswith("E_") else self.evidences.get(base)
        if english is None:
            raise UnknownCodeError(f"unknown DDXPlus evidence code {base!r}")
        if not sep:
            return english
        if value.startswith("V_") or value.isdigit():
            return f"{english}{VALUE_SEPARATOR}{value}"
        mapped = self.values.get((english, value))
        if mapped is None:
            raise UnknownCodeError(f"unknown value {value!r} of DDXPlus evidence {base!r}")
        return f"{english}{VALUE_SEPARATOR}{mapped}"

    def condition(self, name: str) -> str:
        """An English condition key from a French or English pathology name."""
        return self.conditions.get(name, name)


def codes_from_rows(rows: Iterable[Sequence[str]]) -> FrenchCodes:
    """The code map from ``ddxplus_french_codes.tsv`` rows (kind, french, english[, evidence])."""
    evidences: dict[str, str] = {}
    values: dict[tuple[str, str], str] = {}
    conditions: dict[str, str] = {}
    for kind, french, english, *rest in rows:
        if kind == "evidence":
            evidences[french] = english
        elif kind == "value":
            values[(rest[0], french)] = english
        elif kind == "condition":
            conditions[french] = english
    return FrenchCodes(evidences=evidences, values=values, conditions=conditions)


@cache
def french_codes() -> FrenchCodes:
    codes = codes_from_rows(_tsv_rows(FRENCH_CODES_FILE))
    if not codes.evidences:
        raise ValueError(f"{FRENCH_CODES_FILE} in {DATA_DIR} holds no evidence codes")
    return codes
